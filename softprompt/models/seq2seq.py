"""Encoder-decoder language models (T5, BART): the prompt goes into the encoder's input, the decoder is untouched.

Lester et al. (2021) prompt-tune T5 this way: the soft prompt is spliced into the encoder's input
embeddings, exactly as for an encoder (after ``<s>`` where the tokenizer opens with one, as BART's
does; first otherwise, as for T5, whose tokenizer adds no opening token); ``labels`` are the target
text's token ids, which the model shifts into the decoder's inputs itself::

    encoder input      p1 .. pN  translate  this  </s>  [PAD]     (T5, placement="prepend")
    encoder mask       1  .. 1   1          1     1     0
    labels (decoder)   Das  ist  </s>  -100                       (the model's own, untouched)

:class:`Seq2SeqRows` is how such a batch runs (the wrapper's forward does not branch on the
architecture); generation is :mod:`softprompt.wrapper.generation`'s.
"""

from __future__ import annotations

import torch

from softprompt.models.layout import EncoderRows

__all__ = ["Seq2SeqRows"]


class Seq2SeqRows(EncoderRows):
    """An encoder-decoder batch: the encoder's rows as the caller gave them, the prompt at column ``at``.

    ``labels`` are always the decoder's targets (never spliced, whatever their length), the
    decoder's ``logits`` come back as the model gives them (one row per target token), and the
    encoder's ``encoder_last_hidden_state`` without the virtual positions.

    Examples:
        >>> Seq2SeqRows().token_labels(torch.tensor([[5, 6, 1]]), (1, 3))  # target ids, not token labels
        False
    """

    output_keys = ("encoder_last_hidden_state",)  # the decoder's logits are per target token: left alone

    def token_labels(self, labels: torch.Tensor | None, shape: tuple[int, int]) -> bool:
        """Never: a seq2seq model's ``labels`` are the decoder's target ids, passed to it as they are."""
        if labels is not None and (labels.is_floating_point() or labels.dim() != 2):
            raise ValueError(
                "a seq2seq language model takes labels as (batch, target_len) integer token ids of the target text "
                f"(-100 on padding); got shape {tuple(labels.shape)} and dtype {labels.dtype}"
            )
        return False

    def model_inputs(
        self, inputs: dict[str, torch.Tensor], kwargs: dict[str, object]
    ) -> dict[str, torch.Tensor]:
        """The spliced encoder inputs ``(B, T + N, ...)``; ``use_cache=False`` unless the caller set it
        (training and scoring need no decoder key/value cache)."""
        kwargs.setdefault("use_cache", False)
        return inputs
