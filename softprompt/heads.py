"""Where task heads run: each prompt's own head, through the model's own ``forward``, with nothing patched.

A prompt slot owns copies of the model's head modules (the children outside ``base_model``:
``classifier``, ``pre_classifier``, ``score``...). :func:`head_view` builds, once per slot, a shallow
copy of the task model whose backbone child is the *same* frozen module and whose head children
are the slot's copies, with its own ``config`` (the slot's labels and ``problem_type``). Calling
the view runs the model's own forward (pooling, dropout, loss), so no module names are involved,
no method is ever reassigned (two threads with different prompts see their own heads), and
``torch.compile`` traces plain module calls.

A batch that mixes prompts runs the backbone once per prompt on that prompt's rows (the same
arithmetic as one pass over the whole batch) and merges the outputs in batch order.
"""

from __future__ import annotations

import contextlib
import copy
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from softprompt.backbone import generates_text
from softprompt.first_token import wants_every_position
from softprompt.layout import IGNORE_INDEX

if TYPE_CHECKING:
    from softprompt.deep import DeepPromptHooks
    from softprompt.slot import PromptSlot

__all__ = [
    "copy_head_modules",
    "head_children",
    "head_view",
    "is_head_parameter",
    "merge_outputs",
    "run_slots",
]


def head_children(model: nn.Module) -> list[str]:
    """Names of ``model``'s direct children that hold head parameters (outside ``base_model``).

    ``BertForSequenceClassification`` gives ``["classifier"]`` (its pooler is inside the backbone),
    ``DistilBertForSequenceClassification`` ``["pre_classifier", "classifier"]``, a bare model ``[]``, and
    a language model ``[]`` (its LM head is frozen and shared by every prompt, never copied).
    """
    base = getattr(model, "base_model", model)
    if generates_text(model):
        return []
    if base is model:
        return []
    base_ids = {id(p) for p in base.parameters()}
    return [
        name
        for name, child in model.named_children()
        if child is not base and any(id(p) not in base_ids for p in child.parameters())
    ]


def is_head_parameter(name: str) -> bool:
    """Whether a wrapper parameter name (``prompts.<slot>.heads.classifier.weight``) is a head's, not a prompt's.

    Example:
        >>> is_head_parameter("prompts.default.heads.classifier.weight"), is_head_parameter("prompts.default.prompt")
        (True, False)
    """
    parts = name.split(".")
    return len(parts) > 3 and parts[0] == "prompts" and parts[2] in ("heads", "direct")


def copy_head_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Deep copies of the head children; parameters shared with the backbone (tied weights) stay shared."""
    base = model.base_model
    memo: dict[int, Any] = {id(p): p for p in base.parameters()}  # deepcopy keeps these objects
    memo.update({id(b): b for b in base.buffers()})
    return {name: copy.deepcopy(getattr(model, name), memo) for name in head_children(model)}


def head_view(
    model: nn.Module,
    heads: nn.ModuleDict | dict[str, nn.Module],
    direct: dict[str, nn.Parameter],
    config: Any,
) -> nn.Module:
    """A shallow copy of ``model`` that shares its backbone and uses ``heads``, ``direct`` and ``config``.

    ``direct`` replaces head parameters the model holds itself rather than in a child module.

    The view is built once (per prompt slot) and never registered as a submodule, so the
    wrapper's parameters and ``state_dict`` hold the backbone once.
    """
    view = copy.copy(model)  # a new object whose attribute dicts are still the model's...
    # ...so give it its own registries before swapping children in (the model keeps its own head)
    view.__dict__["_modules"] = OrderedDict(model._modules)
    view.__dict__["_parameters"] = OrderedDict(model._parameters)
    view.__dict__["_buffers"] = OrderedDict(model._buffers)
    for name, module in heads.items():
        view._modules[name] = module
    for name, param in direct.items():
        view._parameters[name] = param
    view.__dict__["config"] = config
    if hasattr(model, "num_labels"):  # *ForSequenceClassification keep it as an attribute too
        view.__dict__["num_labels"] = config.num_labels
    return view


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
    is exact for this call (:mod:`softprompt.first_token`), else the whole model."""
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
