"""Running a batch through its prompts: each row's slot view, the backbone once per prompt, outputs merged in order.

A batch that mixes prompts runs the backbone once per prompt on that prompt's rows (the same
arithmetic as one pass over the whole batch) and merges the outputs in batch order. Each slot runs
through its own head view (:func:`softprompt.models.heads.head_view`), trimmed to the [CLS] position
where the head reads nothing else (:mod:`softprompt.models.first_token`).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from softprompt.core.constants import IGNORE_INDEX
from softprompt.models.first_token import wants_every_position

if TYPE_CHECKING:
    from softprompt.models.deep import DeepPromptHooks
    from softprompt.models.slot import PromptSlot

__all__ = ["merge_outputs", "run_slots"]


def merge_outputs(parts: list[tuple[torch.Tensor, Any]], batch: int, labels: torch.Tensor | None) -> Any:
    """Merge per-prompt outputs (``(rows, output)``) back into one batch-ordered ``ModelOutput``.

    Every batch-first tensor (and tuple of them) is scattered to its rows; losses are averaged
    weighted by each part's labelled elements, as one loss over the whole batch would be.
    """
    first = parts[0][1]
    merged = type(first)()
    for key, value in first.items():
        if key == "loss":
            continue
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            merged[key] = _scatter([(rows, out[key]) for rows, out in parts], batch)
        elif isinstance(value, tuple) and all(isinstance(v, torch.Tensor) for v in value):
            merged[key] = tuple(
                _scatter([(rows, out[key][i]) for rows, out in parts], batch) for i in range(len(value))
            )
    if labels is not None and first.get("loss") is not None:
        counts = [_labelled(labels[rows]) for rows, _ in parts]
        total = sum(counts)
        merged["loss"] = sum(out["loss"] * c for (_, out), c in zip(parts, counts)) / max(total, 1)
    return merged


def _scatter(parts: list[tuple[torch.Tensor, torch.Tensor]], batch: int) -> torch.Tensor:
    template = parts[0][1]  # every part has the batch's padded length, so only dim 0 differs
    out = template.new_zeros((batch, *template.shape[1:]))
    for rows, tensor in parts:
        out[rows] = tensor
    return out


def _labelled(labels: torch.Tensor) -> int:
    if labels.is_floating_point():  # regression / multi-label: every row counts
        return int(labels.shape[0])
    return int((labels != IGNORE_INDEX).sum())


def run_slots(
    slots: list[tuple[str, PromptSlot]],
    inputs: dict[str, Any],
    kwargs: dict[str, Any],
    deep_hooks: DeepPromptHooks | None,
    *,
    trim: bool = True,
    **where: int,
) -> Any:
    """Each prompt's rows through its own view of the model (the backbone shared), merged in batch order.

    Args:
        slots: Per row of the batch, its (prompt name, slot).
        inputs: The spliced model inputs, ``(B, T + N, ...)``.
        kwargs: Other arguments of the model's forward.
        deep_hooks: The layer hooks that inject deep prompts (``None`` without deep prompts).
        trim: Run the last layer for the head's position alone where that is exact (:func:`_view`).
        **where: ``at`` (an int, or ``(B,)`` per row), ``n`` and ``total`` of the splice, for deep hooks.
    """
    groups: dict[str, list[int]] = {}
    for i, (name, _) in enumerate(slots):
        groups.setdefault(name, []).append(i)
    batch = len(slots)
    by_name = dict(slots)
    if len(groups) == 1:
        slot = slots[0][1]
        with _deep_context(slot, deep_hooks, rows=batch, **where):
            return _view(slot, kwargs, trim)(**inputs, **kwargs)
    parts = []
    device = inputs["inputs_embeds"].device
    for name, rows in groups.items():
        index = torch.tensor(rows, device=device)
        part = {k: v[index] if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
        slot = by_name[name]
        part_where = {k: v[index] if isinstance(v, torch.Tensor) else v for k, v in where.items()}
        with _deep_context(slot, deep_hooks, rows=len(rows), **part_where):
            parts.append((index, _view(slot, kwargs, trim)(**part, **kwargs)))
    # question answering: one start and one end position per row, every row in the loss
    labels = inputs.get("labels")
    return merge_outputs(parts, batch, labels if labels is not None else inputs.get("start_positions"))


def _view(slot: PromptSlot, kwargs: dict[str, Any], trim: bool) -> nn.Module:
    """The slot's view to run: the one whose last layer computes only what the head reads, where that
    is exact for this call (:mod:`softprompt.models.first_token`), else the whole model."""
    trimmed = slot.first_token_view
    if (
        not trim
        or trimmed is None
        or slot.deep is not None  # deep prompts hook the layers themselves
        or slot.view.base_model.training  # backbone dropout: keep the random stream of the whole model
        or wants_every_position(slot.view, kwargs)
    ):
        return slot.view
    return trimmed


def _deep_context(
    slot: PromptSlot,
    hooks: DeepPromptHooks | None,
    *,
    rows: int,
    at: int | torch.Tensor,
    n: int,
    total: int,
) -> contextlib.AbstractContextManager[None]:
    """While open, each layer's input gets ``slot``'s deep vectors (a no-op for a shallow prompt)."""
    if slot.deep is None:
        return contextlib.nullcontext()
    assert hooks is not None  # registered by the wrapper with its first deep slot
    vectors = slot.deep()  # (L - 1, N, H), the MLP (if any) run once
    return hooks.inject(vectors, at=at, n=n, batch=rows, total=total)
