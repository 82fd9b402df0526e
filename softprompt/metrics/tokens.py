"""Scores for token classification: token logits and labels to tag sequences, scored per entity with seqeval.

Positions labelled ``IGNORE_INDEX`` (special tokens, later sub-words of a word, padding) are
dropped, so each word counts once, by its first sub-word; ids become tag names through ``id2label``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from softprompt.metrics.scores import first_arrays
from softprompt.models.layout import IGNORE_INDEX

__all__ = ["tag_sequence_scores", "tag_sequences", "token_classification_scores"]


def tag_sequences(
    predictions: Any, references: Any, id2label: Mapping[int, str]
) -> tuple[list[list[str]], list[list[str]]]:
    """Predicted and true tag names per row, at the positions whose reference is not ``IGNORE_INDEX``.

    Args:
        predictions: Logits ``(N, T, C)`` (argmaxed) or tag ids ``(N, T)``; a tuple's first element.
        references: Tag ids ``(N, T)``, ``IGNORE_INDEX`` where nothing is scored.
        id2label: Tag names by id.

    Raises:
        ValueError: shapes that do not match, or a scored id without a name.

    Examples:
        >>> tag_sequences([[0, 1, 2, 0]], [[-100, 1, 2, -100]], {0: "O", 1: "B-PER", 2: "I-PER"})
        ([['B-PER', 'I-PER']], [['B-PER', 'I-PER']])
    """
    preds, refs = first_arrays(predictions, references, "token classification")
    if preds.ndim == 3:
        preds = preds.argmax(axis=-1)  # (N, T, C) -> (N, T)
    if refs.ndim != 2 or preds.shape != refs.shape:
        raise ValueError(
            f"token predictions of shape {np.shape(predictions)} do not fit references of shape {refs.shape}; pass "
            "logits (N, T, C) or tag ids (N, T) for references (N, T)"
        )
    names = {int(k): str(v) for k, v in id2label.items()}
    pred_tags: list[list[str]] = []
    ref_tags: list[list[str]] = []
    for pred_row, ref_row in zip(preds, refs):
        keep = ref_row != IGNORE_INDEX
        pred_tags.append(_names(pred_row[keep], names, "predicted"))
        ref_tags.append(_names(ref_row[keep], names, "reference"))
    return pred_tags, ref_tags


def _names(ids: np.ndarray, names: dict[int, str], what: str) -> list[str]:
    try:
        return [names[int(i)] for i in ids]
    except KeyError as exc:
        raise ValueError(f"{what} tag id {exc.args[0]} has no name in id2label ({len(names)} tags)") from None


def tag_sequence_scores(
    predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Entity-level ``precision``, ``recall``, ``f1`` (micro, seqeval's default mode) and word ``accuracy``.

    Examples:
        >>> tag_sequence_scores([["B-PER", "I-PER", "O"]], [["B-PER", "I-PER", "B-LOC"]])["recall"]
        0.5
    """
    from softprompt.metrics import load_metric

    return load_metric("seqeval").compute(
        predictions=[list(p) for p in predictions], references=[list(r) for r in references]
    )


def token_classification_scores(
    predictions: Any, references: Any, id2label: Mapping[int, str]
) -> dict[str, float]:
    """:func:`tag_sequence_scores` of token logits (or ids) against token labels (see :func:`tag_sequences`)."""
    return tag_sequence_scores(*tag_sequences(predictions, references, id2label))
