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
    def prompt_config(self) -> SoftPromptConfig:
        """The active prompt's :class:`~softprompt.SoftPromptConfig`."""
        ...

    @property
    def task(self) -> Task | None:
        """The active prompt's task (``None`` for a bare or token-level model)."""
        ...

    @property
    def id2label(self) -> dict[int, str]:
        """The active prompt's class names by id."""
        ...

    @property
    def backbone_dtype(self) -> torch.dtype:
        """The frozen backbone's dtype."""
        ...

    def slot(self, name: str | None = None) -> Any:
        """The slot named ``name`` (default: the active one)."""
        ...

    def max_input_length(self, max_length: int | None = None, name: str | None = None) -> int:
        """Longest tokenized input that fits with the prompt's virtual tokens."""
        ...

    def cast_backbone(self, dtype: torch.dtype) -> Any:
        """Hold the frozen backbone in ``dtype``; prompts and heads stay fp32."""
        ...

    def can_generate(self) -> bool:
        """Whether the wrapped model is a language model."""
        ...


def is_prompted(model: Any) -> bool:
    """Whether ``model`` is a prompt-tuning wrapper (a :class:`PromptedModel`).

    Examples:
        >>> is_prompted(object())
        False
    """
    return isinstance(model, PromptedModel)
