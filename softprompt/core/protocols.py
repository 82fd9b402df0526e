"""`PromptedModel`: what the layers below the wrapper may ask of a prompt-tuning wrapper, as a type.

The engine, the task modules and the hub run on a :class:`~softprompt.SoftPromptWrapper` and on bare
``transformers`` models alike; they tell the two apart with ``isinstance(model, PromptedModel)``,
never by importing the wrapper (which sits above them) or probing one attribute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from softprompt.core.config import SoftPromptConfig
    from softprompt.core.task import Task

__all__ = ["PromptedModel", "is_prompted"]


@runtime_checkable
class PromptedModel(Protocol):
    """A model that runs a frozen backbone with named soft prompts (the wrapper's public surface).

    Examples:
        >>> from torch import nn
        >>> isinstance(nn.Linear(2, 2), PromptedModel)
        False
    """

    tokenizer: Any
    active_prompt: str

    @property
    def prompt_config(self) -> SoftPromptConfig: ...

    @property
    def task(self) -> Task | None: ...

    @property
    def id2label(self) -> dict[int, str]: ...

    @property
    def backbone_dtype(self) -> torch.dtype: ...

    def slot(self, name: str | None = None) -> Any: ...

    def max_input_length(self, max_length: int | None = None, name: str | None = None) -> int: ...

    def cast_backbone(self, dtype: torch.dtype) -> Any: ...

    def can_generate(self) -> bool: ...


def is_prompted(model: Any) -> bool:
    """Whether ``model`` is a prompt-tuning wrapper (a :class:`PromptedModel`).

    Examples:
        >>> is_prompted(object())
        False
    """
    return isinstance(model, PromptedModel)
