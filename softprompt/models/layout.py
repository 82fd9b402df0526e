"""Where virtual tokens are spliced into a batch: embeddings, masks, segment ids, positions, labels.

All functions take right-padded batches ``(B, T, ...)`` and an insertion index ``at`` (0 for
``prepend``, 1 for ``after_cls``) and return ``(B, T + N, ...)`` tensors. :class:`EncoderRows` is how
an encoder's batch runs: as given; decoder-only models move their rows (:mod:`softprompt.models.decoder`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from softprompt.core.constants import IGNORE_INDEX

__all__ = [
    "IGNORE_INDEX",
    "PER_POSITION_OUTPUTS",
    "EncoderRows",
    "SplicedBatch",
    "check_room",
    "fit_length",
    "insert",
    "insert_at",
    "insert_position_ids",
    "keep_rows_index",
    "outputs_to_caller",
    "per_token_labels",
    "remove_virtual",
    "splice",
]

# outputs with one entry per position of the rows the model ran: the caller gets them without the virtual ones
PER_POSITION_OUTPUTS = ("logits", "last_hidden_state", "start_logits", "end_logits")


def insert(x: torch.Tensor, virtual: torch.Tensor, at: int) -> torch.Tensor:
    """Splice ``virtual`` ``(B, N, ...)`` into ``x`` ``(B, T, ...)`` before position ``at``.

    Examples:
        >>> insert(torch.tensor([[1, 2, 3]]), torch.tensor([[9, 9]]), 1).tolist()
        [[1, 9, 9, 2, 3]]
    """
    virtual = virtual.to(dtype=x.dtype, device=x.device)
    return torch.cat([x[:, :at], virtual, x[:, at:]], dim=1)  # (B, T + N, ...)


def insert_position_ids(position_ids: torch.Tensor, num_virtual: int, at: int) -> torch.Tensor:
    """Give the virtual tokens the next positions and shift the real tokens after them by ``N``.

    Examples:
        >>> insert_position_ids(torch.tensor([[0, 1, 2]]), 2, 1).tolist()
        [[0, 1, 2, 3, 4]]
    """
    start = position_ids[:, at - 1 : at] + 1 if at > 0 else position_ids[:, :1]  # (B, 1)
    offsets = torch.arange(num_virtual, device=position_ids.device, dtype=position_ids.dtype)
    virtual = start + offsets  # (B, N)
    return torch.cat([position_ids[:, :at], virtual, position_ids[:, at:] + num_virtual], dim=1)


def keep_rows_index(lengths: torch.Tensor, total: int, keep: int) -> torch.Tensor:
    """Gather index ``(B, keep)`` that cuts rows longer than ``keep`` but keeps their last real token.

    Row ``b`` of length ``L > keep`` keeps positions ``0 .. keep-2`` and ``L-1`` (the final [SEP]);
    shorter rows keep ``0 .. keep-1`` unchanged (their padding included).

    Examples:
        >>> keep_rows_index(torch.tensor([5, 2]), total=5, keep=3).tolist()
        [[0, 1, 4], [0, 1, 2]]
    """
    base = torch.arange(keep, device=lengths.device).expand(lengths.shape[0], keep).clone()  # (B, keep)
    too_long = lengths > keep
    base[too_long, -1] = (lengths[too_long] - 1).clamp(max=total - 1)
    return base


def remove_virtual(x: torch.Tensor, num_virtual: int, at: int) -> torch.Tensor:
    """Inverse of :func:`insert` along dim 1: ``(B, T + N, ...)`` -> ``(B, T, ...)``."""
    return torch.cat([x[:, :at], x[:, at + num_virtual :]], dim=1)


def insert_at(input_ids: torch.Tensor | None, special_ids: set[int], after_cls: bool) -> int:
    """Where the virtual tokens go: 0 (before everything), or 1 (after a leading ``[CLS]``/``<s>``).

    With ``after_cls``, rows that start with one of ``special_ids`` get the prompt after it; a batch
    where no row does gets it first; a batch that mixes both is refused.
    """
    if not after_cls:
        return 0
    if input_ids is None:  # embeddings given: assume they start with [CLS], as a tokenizer makes them
        return 1
    starts = torch.isin(input_ids[:, 0], torch.tensor(sorted(special_ids), device=input_ids.device))
    if bool(starts.all()):
        return 1
    if not bool(starts.any()):
        return 0
    raise ValueError(
        "some inputs start with a [CLS]/<s> token and some do not; tokenize the whole batch the same way "
        "(or use placement='prepend')"
    )


def check_room(limit: int | None, n: int) -> None:
    """``n`` virtual tokens leave room for text (2 tokens at least) in a model of ``limit`` positions.

    Checked when a prompt is made, before its ``(n, E)`` vectors are allocated, and again per batch.

    Raises:
        ValueError: too many virtual tokens for the model's positions.

    Examples:
        >>> check_room(512, 20)
    """
    if limit is not None and limit - n < 2:
        raise ValueError(
            f"the model's {limit} positions leave no room for text after {n} virtual tokens; use fewer virtual "
            f"tokens (at most {limit - 2})"
        )


def fit_length(
    seqs: dict[str, torch.Tensor | None], seq_len: int, n: int, limit: int | None, truncate: bool
) -> dict[str, torch.Tensor | None]:
    """Check (or, with ``truncate``, enforce) ``seq_len + n <= limit`` on every ``(B, T, ...)`` tensor."""
    if limit is None or seq_len + n <= limit:
        return seqs
    keep = limit - n
    check_room(limit, n)
    if not truncate:
        raise ValueError(
            f"input of {seq_len} tokens + {n} virtual tokens = {seq_len + n} exceeds the model's {limit} positions; "
            f"tokenize with max_length={keep} (wrapper.tokenize() does this), or use "
            "SoftPromptConfig(overflow='truncate') to cut inputs (keeping the final [SEP])"
        )
    index = keep_rows_index(seqs["attention_mask"].sum(1), seq_len, keep)  # (B, keep)
    out: dict[str, torch.Tensor | None] = {}
    for key, value in seqs.items():
        if value is None:
            out[key] = None
            continue
        idx = index if value.dim() == 2 else index.unsqueeze(-1).expand(-1, -1, value.shape[-1])
        out[key] = value.gather(1, idx)
    return out


def splice(seqs: dict[str, torch.Tensor | None], prompt: torch.Tensor, at: int) -> dict[str, torch.Tensor]:
    """The model's inputs with ``prompt`` ``(B, N, E)`` spliced in at ``at``.

    ``seqs`` holds ``inputs_embeds`` ``(B, T, E)``, ``attention_mask`` ``(B, T)`` and optionally
    ``token_type_ids``, ``position_ids`` and token-level ``labels`` ``(B, T)``. Virtual tokens are
    attended to, take the segment of their left neighbour (segment A, after [CLS]), the positions
    after it, and the label ``IGNORE_INDEX``.
    """
    embeds, mask = seqs["inputs_embeds"], seqs["attention_mask"]
    batch, n = embeds.shape[0], prompt.shape[1]
    out = {
        "inputs_embeds": insert(embeds, prompt.to(embeds.dtype), at),  # (B, T + N, E)
        "attention_mask": insert(mask, mask.new_ones(batch, n), at),  # (B, T + N)
    }
    tt = seqs.get("token_type_ids")
    if tt is not None:
        neighbour = tt[:, at - 1 : at] if at > 0 else tt[:, :1]  # (B, 1) segment of the neighbour
        out["token_type_ids"] = insert(tt, neighbour.expand(batch, n), at)
    if seqs.get("position_ids") is not None:
        out["position_ids"] = insert_position_ids(seqs["position_ids"], n, at)
    if seqs.get("labels") is not None:
        out["labels"] = insert(seqs["labels"], seqs["labels"].new_full((batch, n), IGNORE_INDEX), at)
    return out


def per_token_labels(labels: torch.Tensor | None, shape: tuple[int, int]) -> bool:
    """Whether ``labels`` are one integer per input token, ``(B, T)`` for inputs of ``shape`` ``(B, T)``."""
    return (
        labels is not None
        and labels.dim() == 2
        and not labels.is_floating_point()
        and tuple(labels.shape) == shape
    )


class EncoderRows:
    """An encoder batch runs as the caller gave it, the prompt at column ``at`` of every row.

    :class:`softprompt.models.decoder.DecoderRows` has the same methods for decoder-only models, which run on
    rearranged rows (and :mod:`softprompt.models.seq2seq` for language models); the wrapper's forward calls
    these and does not branch on the architecture.

    Examples:
        >>> EncoderRows().to_caller(torch.tensor([[1, 9, 9, 2, 3]]), 2, 1).tolist()
        [[1, 2, 3]]
    """

    output_keys = PER_POSITION_OUTPUTS  # what to_caller() is applied to

    def token_labels(self, labels: torch.Tensor | None, shape: tuple[int, int]) -> bool:
        """Whether ``labels`` are per token (spliced with the inputs) rather than one per row."""
        return per_token_labels(labels, shape)

    def arrange(
        self, seqs: dict[str, torch.Tensor | None], input_ids: torch.Tensor | None, after_cls: bool
    ) -> tuple[dict[str, torch.Tensor | None], torch.Tensor | None]:
        """The caller's ``(B, T, ...)`` tensors and ``input_ids``, unchanged."""
        return seqs, input_ids

    def model_inputs(
        self, inputs: dict[str, torch.Tensor], kwargs: dict[str, object]
    ) -> dict[str, torch.Tensor]:
        """The spliced ``(B, T + N, ...)`` inputs the model runs on: unchanged."""
        return inputs

    def prompt_starts(self, at: int) -> int:
        """Column of the first virtual token in the rows the model runs on (every row: ``at``)."""
        return at

    def to_caller(self, value: torch.Tensor, n: int, at: int) -> torch.Tensor:
        """A per-position output ``(B, T + N, ...)`` without the virtual positions: ``(B, T, ...)``."""
        return remove_virtual(value, n, at)


@dataclass
class SplicedBatch:
    """Where a batch's prompts went: the rows' layout, each row's slot, the insertion column, ``N`` and the length.

    Attributes:
        rows: The batch's :class:`EncoderRows` / :class:`~softprompt.models.decoder.DecoderRows` (after ``model_inputs``).
        slots: Per row, its ``(prompt name, PromptSlot)``.
        at: Insertion column in the right-padded rows (0 or 1).
        n: Virtual tokens per row.
        total: Length of the rows the model runs on (``T + N``, or less if truncated).
    """

    rows: Any
    slots: list[tuple[str, Any]]
    at: int
    n: int
    total: int

    @property
    def starts(self) -> int | torch.Tensor:
        """Column of each row's first virtual token in the rows the model runs on."""
        return self.rows.prompt_starts(self.at)


def outputs_to_caller(outputs: Any, batch: SplicedBatch) -> Any:
    """The model's per-position outputs (``batch.rows.output_keys``) in the caller's columns, in place.

    ``(B, S, C)`` logits / hidden states and ``(B, S)`` question-answering logits lose the virtual
    positions (:meth:`EncoderRows.to_caller`); anything else (pooled logits, a decoder's logits over
    its own tokens) is left as it is.
    """
    for key in batch.rows.output_keys:
        value = outputs.get(key) if hasattr(outputs, "get") else None
        if not isinstance(value, torch.Tensor) or value.dim() < 2 or value.shape[1] != batch.total:
            continue
        if value.dim() == 3 or key in ("start_logits", "end_logits"):
            outputs[key] = batch.rows.to_caller(value, batch.n, batch.at)
    return outputs
