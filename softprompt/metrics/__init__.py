"""Offline metrics: accuracy, F1 and seqeval as `evaluate` modules shipped with softprompt, and plain scorers
(multi-label, regression, tag sequences, SQuAD answers, generated class words).

Which scorer a task uses is its family's choice (:mod:`softprompt.tasks`); nothing here knows the tasks.

``evaluate.load("accuracy")`` downloads its script from the Hugging Face Hub; the modules here are
``evaluate.Metric`` subclasses kept in this package (``metrics/<name>/<name>.py``) and loaded from
that path, so evaluation works with no network.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from softprompt.core.constants import IGNORE_INDEX

if TYPE_CHECKING:
    import evaluate

__all__ = [
    "METRIC_NAMES",
    "class_ids",
    "compute_classification_metrics",
    "load_metric",
    "load_metrics",
    "score_class_ids",
]

logger = logging.getLogger(__name__)

METRIC_NAMES: tuple[str, ...] = ("accuracy", "f1", "seqeval")
"""Names :func:`load_metric` accepts; each is a script at ``softprompt/metrics/<name>/<name>.py``.
``accuracy`` and ``f1`` score class ids; ``seqeval`` scores tag sequences (token classification)."""


_METRICS_DIR = Path(__file__).resolve().parent
# Arguments each metric gets when scored here: F1 is the macro average (every class counts equally).
_COMPUTE_KWARGS: dict[str, dict[str, Any]] = {"accuracy": {}, "f1": {"average": "macro"}}


def load_metric(name: str) -> evaluate.EvaluationModule:
    """Load one of softprompt's offline metrics as an ``evaluate`` module.

    The module is kept in memory (no cache files to lock), so several processes may load it at once,
    and loaded once per process: later calls return the same module. ``evaluate`` itself is imported
    only here (it pulls in ``transformers.pipelines``, seconds at import).

    Args:
        name: ``"accuracy"``, ``"f1"`` or ``"seqeval"`` (see :data:`METRIC_NAMES`).

    Returns:
        The ``evaluate.EvaluationModule``; call ``.compute(predictions=..., references=...)``.
        ``f1`` takes ``average=`` ``"macro"`` (its default), ``"micro"``, ``"weighted"`` or
        ``"binary"`` (with ``pos_label=``, default 1). ``seqeval`` takes lists of tag lists and
        returns entity-level ``precision``, ``recall``, ``f1`` and word ``accuracy``.

    Raises:
        ValueError: ``name`` is not one of :data:`METRIC_NAMES`.

    Examples:
        >>> load_metric("f1").compute(predictions=[0, 1, 1, 0], references=[0, 1, 0, 0])
        {'f1': 0.7333333333333334}
    """
    if name not in METRIC_NAMES:
        choices = ", ".join(repr(n) for n in METRIC_NAMES)
        raise ValueError(
            f"unknown metric {name!r}; softprompt ships {choices} (they load offline). For another metric, "
            "call evaluate.load() yourself with a local script path"
        )
    return _load_once(name)


@functools.cache
def _load_once(name: str) -> evaluate.EvaluationModule:
    """Each metric module is built once per process (``evaluate.load`` compiles its script every call)."""
    import evaluate

    path = _METRICS_DIR / name / f"{name}.py"
    logger.debug("loading metric %r from %s", name, path)
    return evaluate.load(str(path), keep_in_memory=True)


def class_ids(predictions: Any, references: Any) -> tuple[np.ndarray, np.ndarray]:
    """Turn model outputs and labels into two equal-length 1-D arrays of class ids.

    Scores with a trailing class axis are argmaxed; token-level arrays are flattened and the
    positions labelled -100 dropped.

    Raises:
        ValueError: shapes or dtypes that cannot be class ids (the message gives both shapes).

    Examples:
        >>> class_ids(np.array([[0.2, 0.8]]), np.array([1]))
        (array([1]), array([1]))
    """
    if isinstance(predictions, tuple):  # models that also return hidden states or attentions
        predictions = predictions[0]
    if isinstance(references, tuple):
        if len(references) != 1:
            raise ValueError(
                f"got {len(references)} label arrays (the Trainer's label_names has several entries); "
                "classification metrics need exactly one"
            )
        references = references[0]
    preds = np.asarray(predictions)
    refs = np.asarray(references)

    if not np.issubdtype(refs.dtype, np.integer):
        raise ValueError(
            f"references must be integer class ids but have dtype {refs.dtype}; pass the label ids, "
            "not one-hot or soft labels"
        )
    if preds.ndim == refs.ndim + 1:
        preds = preds.argmax(axis=-1)  # (N, C) -> (N,) or (N, T, C) -> (N, T)
    elif preds.ndim != refs.ndim:
        raise ValueError(
            f"predictions of shape {preds.shape} do not match references of shape {refs.shape}; pass "
            "class ids of the references' shape, or scores with one extra trailing class axis"
        )
    elif not np.issubdtype(preds.dtype, np.integer):
        raise ValueError(
            f"predictions have the references' shape {refs.shape} but dtype {preds.dtype}; pass integer "
            "class ids, or scores with a trailing class axis to be argmaxed"
        )
    if preds.shape != refs.shape:
        raise ValueError(
            f"predictions of shape {preds.shape} (after argmax) do not match references of shape {refs.shape}"
        )

    if refs.ndim == 2:  # token level: (N, T); -100 marks padding and sub-word continuations
        keep = refs != IGNORE_INDEX
        preds, refs = preds[keep], refs[keep]
    elif refs.ndim == 1:
        ignored = int(np.sum(refs == IGNORE_INDEX))
        if ignored:
            raise ValueError(
                f"{ignored} of {refs.size} sequence-level references are {IGNORE_INDEX}; every example "
                "needs a real label (only token-level labels of shape (N, T) may use -100)"
            )
    else:
        raise ValueError(
            f"references must have shape (N,) or (N, T) but have shape {refs.shape}; "
            "multi-label targets are not supported"
        )
    if refs.size == 0:
        raise ValueError("no labelled examples to score (empty input, or every label is -100)")
    return preds.astype(np.int64), refs.astype(np.int64)


def score_class_ids(
    modules: Mapping[str, evaluate.EvaluationModule], preds: np.ndarray, refs: np.ndarray
) -> dict[str, float]:
    """Each loaded metric module's score of class ids (F1 macro-averaged).

    Examples:
        >>> score_class_ids({"accuracy": load_metric("accuracy")}, np.array([0, 1]), np.array([0, 0]))
        {'accuracy': 0.5}
    """
    return {
        name: float(module.compute(predictions=preds, references=refs, **_COMPUTE_KWARGS[name])[name])
        for name, module in modules.items()
    }


def load_metrics(metrics: Sequence[str]) -> dict[str, evaluate.EvaluationModule]:
    """:func:`load_metric` of each name, in order, without repeats (a single string is one name).

    Raises:
        ValueError: an empty list, an unknown name, or ``seqeval`` (it scores tag sequences, not class ids).

    Examples:
        >>> list(load_metrics("f1"))
        ['f1']
    """
    if isinstance(metrics, str):  # "f1" means ("f1",), not ("f", "1")
        metrics = (metrics,)
    if not metrics:
        raise ValueError(f"metrics is empty; pass names from {list(METRIC_NAMES)}")
    if "seqeval" in metrics:
        raise ValueError(
            "seqeval scores tag sequences, not class ids: for token classification pass "
            "task=Task('token-classification') and id2label= (or call compute_task_metrics)"
        )
    return {name: load_metric(name) for name in dict.fromkeys(metrics)}  # dedupe, keep order


def compute_classification_metrics(
    predictions: np.ndarray | Sequence[int],
    references: np.ndarray | Sequence[int],
    *,
    metrics: Sequence[str] = ("accuracy", "f1"),
) -> dict[str, float]:
    """Score class-id predictions against references with softprompt's offline metrics.

    Args:
        predictions: Predicted class ids, shape ``(N,)``. Scores of shape ``(N, C)`` are argmaxed.
        references: True class ids, shape ``(N,)``.
        metrics: Names from :data:`METRIC_NAMES`; F1 is the macro average, under ``"f1"``.

    Returns:
        ``{name: float}``, e.g. ``{"accuracy": 0.75, "f1": 0.73}``.

    Raises:
        ValueError: an unknown metric name, mismatched shapes, non-integer ids, or no examples.

    Examples:
        >>> compute_classification_metrics(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]))
        {'accuracy': 0.75, 'f1': 0.7333333333333334}
    """
    modules = load_metrics(metrics)
    preds, refs = class_ids(predictions, references)
    return score_class_ids(modules, preds, refs)
