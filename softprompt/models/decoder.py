"""Decoder-only models: rows rearranged so that last-token pooling and positions are the text-alone ones.

A decoder's ``*ForSequenceClassification`` pools "the last token that is not padding", which it finds
from ``input_ids``; given ``inputs_embeds`` (all the wrapper can pass once a prompt is spliced in) it
pools position ``-1``, padding or not. Its positions count from the first column, padding included.
So the wrapper runs a decoder on *left-aligned* rows, padding first, with ``position_ids`` counted over
the real tokens only (a row of a batch whose longest row has two more tokens)::

    the caller's row (padded on either side)    [PAD] [PAD] <s>   a     b
    right-padded: real tokens first             <s>   a     b     [PAD] [PAD]
    prompt spliced in, as for encoders          <s>   p1    p2    a     b     [PAD] [PAD]
    left-aligned: what the model runs           [PAD] [PAD] <s>   p1    p2    a     b
    position_ids                                0     0     0     1     2     3     4

Column ``-1`` is then every row's last real token, and every real token and virtual token has the
position (and, causal attention seeing only what is before it, the hidden state) it has when its text
runs alone. Every step is a gather, so nothing is rounded. Per-token outputs (token logits, hidden
states of a bare model) are gathered back to the caller's columns. A causal language model's
next-token labels move with the rows (:class:`CausalLMRows`).
"""

from __future__ import annotations

import torch

from softprompt.models.layout import IGNORE_INDEX, PER_POSITION_OUTPUTS, per_token_labels, remove_virtual

__all__ = ["CausalLMRows", "DecoderRows"]


def _gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[b, index[b, j], ...]`` for a ``(B, S, ...)`` tensor and a ``(B, S')`` index."""
    if x.dim() > 2:
        index = index.reshape(*index.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
    return x.gather(1, index)


class DecoderRows:
    """How one decoder batch's rows are moved, so that per-token outputs can be moved back.

    Args:
        attention_mask: ``(B, T)`` 0/1 mask of the caller's batch; each row padded on one side only
            (left or right: rows may differ).

    Raises:
        ValueError: a mask that is not 0/1, not ``(B, T)``, or has padding on both sides of a row
            (or in its middle).

    Examples:
        >>> rows = DecoderRows(torch.tensor([[0, 1, 1], [1, 1, 1]]))
        >>> rows.right_padded(torch.tensor([[0, 7, 8], [5, 6, 7]])).tolist()
        [[7, 8, 0], [5, 6, 7]]
    """

    output_keys = PER_POSITION_OUTPUTS  # what to_caller() is applied to

    def __init__(self, attention_mask: torch.Tensor) -> None:
        if attention_mask.dim() != 2:
            raise ValueError(
                f"decoder-only models take a (batch, seq_len) attention_mask, got shape {tuple(attention_mask.shape)}"
            )
        if not bool(((attention_mask == 0) | (attention_mask == 1)).all()):
            raise ValueError("decoder-only models need a 0/1 attention_mask")
        mask = attention_mask.long()  # (B, T)
        changes = (mask[:, 1:] != mask[:, :-1]).sum(1)  # (B,) 0: no padding, 1: padding on one side
        if bool((changes > 1).any()):
            row = int((changes > 1).nonzero()[0, 0])
            raise ValueError(
                "decoder-only models need each row padded on one side only (a mask row like 0 0 1 1 or 1 1 0 0); "
                f"row {row} is {mask[row].tolist()}"
            )
        # stable sort of "is padding": real tokens first, each group in its own order
        self.order = torch.sort(1 - mask, dim=1, stable=True).indices  # (B, T) caller column of each column
        self.seq_len = mask.shape[1]
        self.shift: torch.Tensor | None = None  # (B,) padding moved to the front by model_inputs()

    def token_labels(self, labels: torch.Tensor | None, shape: tuple[int, int]) -> bool:
        """Whether ``labels`` are per token (spliced and moved with the inputs) rather than one per row."""
        return per_token_labels(labels, shape)

    def right_padded(self, x: torch.Tensor | None) -> torch.Tensor | None:
        """A ``(B, T, ...)`` tensor of the caller's batch with each row's real tokens first."""
        return None if x is None else _gather(x, self.order.to(x.device))

    def arrange(
        self, seqs: dict[str, torch.Tensor | None], input_ids: torch.Tensor | None, after_bos: bool
    ) -> tuple[dict[str, torch.Tensor | None], torch.Tensor | None]:
        """The caller's ``(B, T, ...)`` tensors and ``input_ids``, right-padded (to find the prompt's place on).

        Raises:
            ValueError: ``after_bos`` (placement ``after_cls``) without ``input_ids``: whether a row opens
                with BOS cannot be seen in embeddings, and decoder tokenizers differ (Llama's adds one,
                GPT-2's does not).
        """
        if after_bos and input_ids is None:
            raise ValueError(
                "a decoder-only model given inputs_embeds cannot tell whether each row starts with a BOS token: "
                "pass input_ids, or use SoftPromptConfig(placement='prepend') to put the prompt first"
            )
        return {key: self.right_padded(value) for key, value in seqs.items()}, self.right_padded(input_ids)

    def model_inputs(
        self, inputs: dict[str, torch.Tensor], kwargs: dict[str, object]
    ) -> dict[str, torch.Tensor]:
        """Spliced right-padded inputs ``(B, S, ...)`` moved to the end of each row, with ``position_ids``.

        Given ``position_ids`` (shifted by the splice) are kept; otherwise each real token's position
        is the number of real tokens before it (padding gets 0, and is never attended to). Sets
        ``use_cache=False`` in the model's ``kwargs`` unless the caller set it (a classifier needs no
        key/value cache).
        """
        kwargs.setdefault("use_cache", False)
        mask = inputs["attention_mask"]  # (B, S), real tokens first
        total = mask.shape[1]
        self.shift = total - mask.sum(1)  # (B,) padding per row
        columns = torch.arange(total, device=mask.device)
        # (B, S): left-aligned column k reads right-padded column k - shift
        index = (columns - self.shift[:, None]) % total
        out = {  # every (B, S, ...) tensor; anything else (one value per row) as it is
            key: _gather(value, index) if value.dim() >= 2 and value.shape[1] == total else value
            for key, value in inputs.items()
        }
        if out.get("position_ids") is None:
            out["position_ids"] = (out["attention_mask"].cumsum(1) - 1).clamp(min=0)  # (B, S)
        return out

    def prompt_starts(self, at: int) -> torch.Tensor:
        """``(B,)`` column of each row's first virtual token in the left-aligned rows."""
        assert self.shift is not None, "model_inputs() first"
        return self.shift + at

    def to_caller(self, value: torch.Tensor, n: int, at: int) -> torch.Tensor:
        """A per-position output ``(B, S, ...)`` of the left-aligned run, in the caller's columns: ``(B, T, ...)``.

        The virtual positions are dropped. If ``overflow="truncate"`` cut the rows (``S - n < T``), the
        output comes back right-padded, as the cut rows were run (the caller's columns no longer exist).
        """
        assert self.shift is not None, "model_inputs() first"
        total = value.shape[1]
        shift = self.shift.to(value.device)[:, None]  # (B, 1)
        if total - n != self.seq_len:  # truncated: right-padded, virtual positions removed
            columns = torch.arange(total, device=value.device)
            return remove_virtual(_gather(value, (columns + shift) % total), n, at)
        # (B, T): the right-padded column of each caller column
        inverse = torch.argsort(self.order.to(value.device), dim=1)
        spliced = inverse + n * (inverse >= at)  # (B, T) its column once the prompt is in
        return _gather(value, (spliced + shift) % total)  # (B, T, ...)


class CausalLMRows(DecoderRows):
    """A causal language model's batch: :class:`DecoderRows`, with next-token labels that give each text's own loss.

    The model shifts ``labels`` itself (column ``t`` predicts the label at ``t + 1``). In left-aligned
    rows the first real token's label would be predicted from the padding before it, which a text
    alone never does, so that label and every label on padding become ``-100``: the loss is then each
    text's own, however the batch was padded (the virtual positions already carry ``-100``).

    Args:
        attention_mask: As for :class:`DecoderRows`.
        num_virtual: ``N``, to see whether ``overflow="truncate"`` cut the rows.

    Raises:
        ValueError: labels that are not one per input token, or rows cut by ``overflow="truncate"`` while
            labels are given (cutting the middle of a row would train on targets that no longer follow).

    Examples:
        >>> rows = CausalLMRows(torch.tensor([[0, 1, 1]]), num_virtual=1)
        >>> rows.token_labels(None, (1, 3))
        False
    """

    def __init__(self, attention_mask: torch.Tensor, num_virtual: int) -> None:
        super().__init__(attention_mask)
        self.num_virtual = num_virtual

    def token_labels(self, labels: torch.Tensor | None, shape: tuple[int, int]) -> bool:
        """``labels`` must be ``None`` or one integer per input token, ``(B, T)`` (-100 where no loss)."""
        if labels is None:
            return False
        if not per_token_labels(labels, shape):
            raise ValueError(
                f"a causal language model takes labels of the inputs' shape {shape}, integer token ids (the "
                f"continuation to learn, -100 elsewhere); got shape {tuple(labels.shape)} and dtype {labels.dtype}"
            )
        return True

    def model_inputs(
        self, inputs: dict[str, torch.Tensor], kwargs: dict[str, object]
    ) -> dict[str, torch.Tensor]:
        """:meth:`DecoderRows.model_inputs`; labels on padding and on each row's first real token become -100."""
        out = super().model_inputs(inputs, kwargs)
        labels = out.get("labels")
        if labels is None:
            return out
        mask = out["attention_mask"]  # (B, S), padding first
        if mask.shape[1] - self.num_virtual < self.seq_len:
            raise ValueError(
                f"inputs of {self.seq_len} tokens + {self.num_virtual} virtual tokens exceed the model's positions and "
                "overflow='truncate' would cut the middle of rows whose labels follow them; tokenize with room for "
                "the virtual tokens (softprompt.tokenize_text_to_label does) instead"
            )
        assert self.shift is not None
        first = torch.zeros_like(mask, dtype=torch.bool)
        first.scatter_(1, self.shift[:, None].to(mask.device), True)  # (B, S): each row's first real column
        out["labels"] = labels.masked_fill((mask == 0) | first, IGNORE_INDEX)  # (B, S)
        return out
