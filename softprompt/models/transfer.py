"""Prompt transfer (Vu et al., "SPoT", ACL 2022): start a prompt from trained prompt files, averaged.

``SoftPromptConfig(init="prompt", init_from=[...])`` reads each file (bounded and validated as
:func:`~softprompt.read_prompt_file` does), checks it was trained on *this* base model (its recorded
fingerprint: type, sizes and a hash of the input embeddings; a file of another model is refused,
since its vectors mean nothing in this embedding space), and averages:

- the input prompts ``(N, E)``: every file must have the config's ``num_virtual_tokens``;
- the deep vectors ``(L - 1, N, H)`` when the new prompt is deep and every file has them (a deep
  prompt from shallow files starts its deep vectors as usual; a mix of deep and shallow is refused);
- the head, only when every file was trained for the target's task with the same class names and
  the same head shapes; otherwise the head starts as the model's own (an entailment head means
  nothing to a regression task), and the log says so.

Examples:
    >>> path = wrapper.save_prompt("source.safetensors")
    >>> config = SoftPromptConfig(num_virtual_tokens=4, init="prompt", init_from=[str(path)])
    >>> target = SoftPromptWrapper(model, config, tokenizer=tokenizer)
    >>> torch.equal(target.slot().prompt, wrapper.slot().prompt)
    True
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from softprompt.core.config import SoftPromptConfig
from softprompt.core.constants import PROMPT_NAME
from softprompt.core.task import Task
from softprompt.files.checks import base_model_mismatch
from softprompt.files.prompt_file import PromptFile, read_prompt_file
from softprompt.models import backbone

__all__ = ["Transferred", "transferred_prompt"]

logger = logging.getLogger(__name__)


@dataclass
class Transferred:
    """What a new prompt takes from its source files.

    Attributes:
        prompt: ``(N, E)`` fp32, the mean of the files' input prompts.
        deep: ``(L - 1, N, H)`` fp32, the mean of their deep vectors, or ``None`` (start them as usual).
        head: Head values by parameter name, the mean of the files' heads, or ``None`` (the model's own).
    """

    prompt: torch.Tensor
    deep: torch.Tensor | None
    head: dict[str, torch.Tensor] | None


def _source(path: str) -> Path:
    where = Path(path)
    return where / PROMPT_NAME if where.is_dir() else where  # a run folder holds prompt.safetensors


def _check_base(pf: PromptFile, model: nn.Module) -> None:
    where = pf.path or "prompt file"
    reason = base_model_mismatch(pf.base_fingerprint, pf.base_model, model)
    if reason:
        raise ValueError(
            f"init_from {where}: the prompt was {reason}. A prompt's vectors only mean something in the "
            "embedding space they were trained in: transfer from a prompt of this model"
        )
    name = str(getattr(model.config, "_name_or_path", "") or "")
    if not pf.base_fingerprint and not (
        pf.base_model and name and Path(pf.base_model).name == Path(name).name
    ):
        raise ValueError(  # a transfer needs the same embedding space; names alone may not tell
            f"init_from {where}: the file records no fingerprint of its base model and its base_model "
            f"{pf.base_model!r} does not match this model's {name!r}, so it cannot be checked to fit; save it "
            "again with this release"
        )


def _same_head(
    pf: PromptFile, task: Task | None, id2label: Mapping[int, str], shapes: dict[str, tuple]
) -> bool:
    """Whether ``pf``'s head predicts what the new prompt's head predicts (task, class names, shapes)."""
    if task is None or not task.has_head or pf.task != task or dict(pf.id2label) != dict(id2label):
        return False
    return sorted(pf.head) == sorted(shapes) and all(tuple(pf.head[k].shape) == shapes[k] for k in shapes)


def transferred_prompt(
    config: SoftPromptConfig,
    model: nn.Module,
    *,
    task: Task | None,
    id2label: Mapping[int, str],
) -> Transferred:
    """Read ``config.init_from`` and average what fits the new prompt (see the module docstring).

    Args:
        config: The new prompt's config (``init="prompt"``).
        model: The wrapped model (its fingerprint and head shapes are compared).
        task: What the new prompt's head predicts.
        id2label: The new prompt's class names.

    Returns:
        The :class:`Transferred` vectors (and head, where it fits).

    Raises:
        FileNotFoundError: a source file does not exist.
        ValueError: a file that is unreadable, of another base model, of another prompt length, or a
            mix of deep and shallow files for a deep prompt.

    Examples:
        >>> config = SoftPromptConfig(num_virtual_tokens=4, init="prompt",
        ...                           init_from=[str(wrapper.save_prompt("a.safetensors"))])
        >>> transferred_prompt(config, model, task=wrapper.task, id2label=wrapper.id2label).prompt.shape
        torch.Size([4, 32])
    """
    paths: Sequence[str] = config.init_from or []
    files = [read_prompt_file(_source(p)) for p in paths]
    n = config.num_virtual_tokens
    for pf in files:
        _check_base(pf, model)
        if pf.config.num_virtual_tokens != n:
            raise ValueError(
                f"init_from {pf.path}: the prompt has {pf.config.num_virtual_tokens} virtual tokens, the new one "
                f"{n}; set num_virtual_tokens={pf.config.num_virtual_tokens} to transfer it"
            )
    prompt = torch.stack([pf.prompt for pf in files]).mean(0)  # (N, E)
    deep = None
    if config.deep:
        with_deep = [pf for pf in files if pf.deep_prompts is not None]
        if with_deep and len(with_deep) != len(files):
            raise ValueError(
                "init_from mixes deep and shallow prompt files "
                f"({[pf.path for pf in with_deep]} are deep); a deep prompt transfers from all deep files or none"
            )
        if with_deep:
            deep = torch.stack([pf.deep_prompts for pf in with_deep]).mean(0)  # (L - 1, N, H)
    elif any(pf.deep_prompts is not None for pf in files):
        logger.info("init_from: the new prompt is not deep; only the source files' input prompts are used")
    params = dict(model.named_parameters())
    shapes = {name: tuple(params[name].shape) for name in backbone.head_parameter_names(model)}
    head = None
    if shapes and all(_same_head(pf, task, id2label, shapes) for pf in files):
        head = {name: torch.stack([pf.head[name] for pf in files]).mean(0) for name in shapes}
    else:
        logger.info(
            "init_from: the head is not transferred (a source file was trained for another task, other classes "
            "or another head); the new prompt's head starts as the model's"
        )
    return Transferred(prompt=prompt, deep=deep, head=head)
