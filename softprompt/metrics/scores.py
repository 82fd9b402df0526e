"""Scores for multi-label and regression heads (micro/macro-F1 and exact match; Pearson r, Spearman rho, MSE) and
for generated class words (exact-match accuracy, macro F1, the share naming no class).

Plain numpy, checked against scipy and scikit-learn in the tests; single-label classification uses
the ``evaluate`` modules beside this file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["first_arrays", "multi_label_scores", "regression_scores", "text_to_label_scores"]


def first_arrays(predictions: Any, references: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``Trainer``'s predictions and labels as two arrays: a tuple's first element (models that also return
    hidden states), exactly one label array; ``what`` names the task in the errors.

    Examples:
        >>> first_arrays(([[0.1]], "hidden"), [1.0], "regression")[0].shape
        (1, 1)
    """
    if isinstance(predictions, tuple):  # models that also return hidden states or attentions
        predictions = predictions[0]
    if isinstance(references, tuple):
        if len(references) != 1:
            raise ValueError(f"got {len(references)} label arrays; {what} metrics need exactly one")
        references = references[0]
    preds, refs = np.asarray(predictions), np.asarray(references)
    if refs.size == 0:
        raise ValueError("no examples to score")
    return preds, refs


def regression_scores(predictions: Any, references: Any) -> dict[str, float]:
    """Pearson r, Spearman rho (ties averaged) and mean squared error.

    Args:
        predictions: ``(N,)`` or ``(N, 1)`` predicted values.
        references: ``(N,)`` or ``(N, 1)`` true values.

    Raises:
        ValueError: shapes that are not one value per example, or non-finite values.

    Examples:
        >>> regression_scores([1.0, 2.0, 3.5], [1.0, 2.0, 3.0])
        {'pearson': 0.9933992677987828, 'spearman': 1.0, 'mse': 0.08333333333333333}
    """
    preds, refs = first_arrays(predictions, references, "regression")
    preds = preds.astype(np.float64).reshape(preds.shape[0], -1) if preds.ndim else preds
    refs = refs.astype(np.float64).reshape(refs.shape[0], -1) if refs.ndim else refs
    if (
        preds.ndim != 2
        or refs.ndim != 2
        or preds.shape[1] != 1
        or refs.shape[1] != 1
        or len(preds) != len(refs)
    ):
        raise ValueError(
            f"regression scores need one value per example: predictions {np.shape(predictions)}, "
            f"references {np.shape(references)}"
        )
    p, r = preds[:, 0], refs[:, 0]
    if not (np.isfinite(p).all() and np.isfinite(r).all()):
        raise ValueError("regression predictions or references contain NaN or inf")
    return {
        "pearson": _pearson(p, r),
        "spearman": _pearson(_ranks(p), _ranks(r)),
        "mse": float(np.mean((p - r) ** 2)),
    }


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    dx, dy = x - x.mean(), y - y.mean()
    denom = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    return float((dx * dy).sum() / denom) if denom > 0 else float("nan")  # a constant has no correlation


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..N with tied values sharing their mean rank (as scipy.stats.rankdata)."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.r_[True, sorted_x[1:] != sorted_x[:-1]]  # (N,) first of each run of ties
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    counts = np.diff(np.r_[first, len(x)])
    mean_rank = first + (counts + 1) / 2.0  # 1-based mean rank of each tie group
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = mean_rank[group]
    return ranks


def multi_label_scores(predictions: Any, references: Any) -> dict[str, float]:
    """Micro-F1, macro-F1 and exact match (every class of a text right).

    A class with no true and no predicted members scores F1 0 in the macro mean, as scikit-learn's
    default ``zero_division`` does.

    Args:
        predictions: ``(N, C)`` 0/1 decisions.
        references: ``(N, C)`` 0/1 true classes.

    Raises:
        ValueError: shapes differ or values are not 0/1.

    Examples:
        >>> multi_label_scores([[1, 0], [1, 1]], [[1, 0], [0, 1]])
        {'f1_micro': 0.8, 'f1_macro': 0.8333333333333333, 'exact_match': 0.5}
    """
    preds, refs = first_arrays(predictions, references, "multi-label")
    if preds.shape != refs.shape or refs.ndim != 2:
        raise ValueError(
            f"multi-label scores need (N, C) decisions and references of one shape, got {preds.shape} and {refs.shape}"
        )
    for name, arr in (("predictions", preds), ("references", refs)):
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"multi-label {name} must be 0/1 per class")
    p, r = preds.astype(bool), refs.astype(bool)
    tp = (p & r).sum(0).astype(np.float64)  # (C,)
    fp = (p & ~r).sum(0).astype(np.float64)
    fn = (~p & r).sum(0).astype(np.float64)
    denom = 2 * tp + fp + fn
    per_class = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    micro_denom = 2 * tp.sum() + fp.sum() + fn.sum()
    return {
        "f1_micro": float(2 * tp.sum() / micro_denom) if micro_denom > 0 else 0.0,
        "f1_macro": float(per_class.mean()),
        "exact_match": float((p == r).all(1).mean()),
    }


def text_to_label_scores(
    predicted: Sequence[int | None], references: Sequence[int], num_classes: int
) -> dict[str, float]:
    """Exact-match accuracy, macro F1 over the ``num_classes`` classes, and the share of generations naming no class.

    A generation that names no class (``None``) is wrong for its text's class (a false negative of
    it) and a false positive of no class.

    Examples:
        >>> text_to_label_scores([0, 1, None, 1], [0, 1, 1, 0], 2)
        {'accuracy': 0.5, 'f1': 0.5833333333333333, 'unknown': 0.25}
    """
    if len(predicted) != len(references) or not references:
        raise ValueError(
            f"{len(predicted)} predictions for {len(references)} references; need one each, at least one"
        )
    pred = np.asarray([-1 if p is None else int(p) for p in predicted])
    gold = np.asarray([int(r) for r in references])
    f1s = []
    for k in range(num_classes):
        tp = int(np.sum((pred == k) & (gold == k)))
        wrong = int(np.sum((pred == k) != (gold == k)))  # false positives + false negatives
        f1s.append(2 * tp / (2 * tp + wrong) if tp + wrong else 0.0)
    return {
        "accuracy": float(np.mean(pred == gold)),
        "f1": float(np.mean(f1s)),
        "unknown": float(np.mean(pred == -1)),
    }
