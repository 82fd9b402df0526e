"""Where task heads run: one backbone pass for a batch, then each prompt's head (fp32) on its rows.

Heads are computed by the model's own ``forward`` (so pooling and losses stay the model's), with a
slot's head parameters substituted by ``torch.func.functional_call`` and the model's call of its
backbone answered from the shared pass. No module names are involved.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from softprompt import layout
from softprompt.slot import PromptSlot

__all__ = ["forward_heads", "slice_output", "to_float32"]


def slice_output(output: Any, index: torch.Tensor, batch: int) -> Any:
    """Rows ``index`` of every batch-first tensor in a ``ModelOutput``."""
    sliced = {}
    for key, value in output.items():
        if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == batch:
            sliced[key] = value[index]
        elif isinstance(value, tuple) and all(isinstance(v, torch.Tensor) for v in value):
            sliced[key] = tuple(v[index] for v in value)
        else:
            sliced[key] = value
    return type(output)(**sliced)


def to_float32(output: Any) -> Any:
    """Cast a backbone output's floating tensors to fp32 (no-op for an fp32 backbone)."""
    for key, value in output.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dtype != torch.float32:
            output[key] = value.float()
    return output


def forward_heads(
    model: nn.Module,
    inputs: dict[str, Any],
    kwargs: dict[str, Any],
    groups: list[tuple[PromptSlot, list[int]]],
) -> Any:
    """Run the shared backbone once, then each prompt's head (fp32) on its rows of the batch.

    The heads are computed by the model's own forward (so pooling and losses stay the model's),
    with the slot's head parameters substituted and its backbone call answered from the shared pass.
    """
    base = model.base_model
    batch = inputs["inputs_embeds"].shape[0]
    labels = inputs.get("labels")
    shared = to_float32(
        base(**{k: v for k, v in inputs.items() if k != "labels"}, **kwargs)
    )  # one pass, B rows
    per_group: list[tuple[torch.Tensor | None, Any]] = []
    for slot, rows in groups:
        if len(groups) == 1:
            index, part, group_inputs = None, shared, inputs
        else:
            index = torch.tensor(rows, device=inputs["inputs_embeds"].device)
            part = slice_output(shared, index, batch)
            group_inputs = {k: v[index] for k, v in inputs.items() if isinstance(v, torch.Tensor)}
        # answer the head's call of the backbone from the shared pass
        base.forward = lambda *a, _part=part, **k: _part
        try:
            out = functional_call(model, slot.head_params(), args=(), kwargs={**group_inputs, **kwargs})
        finally:
            del base.forward
        per_group.append((index, out))
    if len(per_group) == 1:
        return per_group[0][1]

    merged = type(per_group[0][1])()
    # every slot's head was checked against the model's, so all logits have the same shape
    first = per_group[0][1].logits
    merged_logits = first.new_empty((batch, *first.shape[1:]))
    for index, out in per_group:
        merged_logits[index] = out.logits
    merged["logits"] = merged_logits
    if labels is not None:
        # each head's loss is a mean over its labelled elements; weight by them for the batch mean
        counts = [(labels[index] != layout.IGNORE_INDEX).sum() for index, _ in per_group]
        total = sum(counts)
        merged["loss"] = sum(out.loss * c for (_, out), c in zip(per_group, counts)) / total.clamp(min=1)
    if kwargs.get("output_hidden_states"):
        merged["hidden_states"] = shared.hidden_states
    if kwargs.get("output_attentions"):
        merged["attentions"] = shared.attentions
    return merged
