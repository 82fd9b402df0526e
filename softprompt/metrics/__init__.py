"""Offline metrics: accuracy, F1 and seqeval as `evaluate` modules shipped with softprompt, SQuAD answer scores,
per-task scoring, a Trainer hook.

``evaluate.load("accuracy")`` downloads its script from the Hugging Face Hub; the modules here are
``evaluate.Metric`` subclasses kept in this package (``metrics/<name>/<name>.py``) and loaded from
that path, so evaluation works with no network.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from softprompt.metrics.scores import multi_label_scores, regression_scores
from softprompt.metrics.squad import squad_scores
from softprompt.metrics.tokens import token_classification_scores
from softprompt.task import Task, TaskType

if TYPE_CHECKING:
    import datasets
    import evaluate
    from transformers import EvalPrediction, PreTrainedTokenizerBase

__all__ = [
    "METRIC_NAMES",
    "build_compute_metrics",
    "compute_classification_metrics",
    "compute_task_metrics",
    "load_metric",
]

logger = logging.getLogger(__name__)

METRIC_NAMES: tuple[str, ...] = ("accuracy", "f1", "seqeval")
"""Names :func:`load_metric` accepts; each is a script at ``softprompt/metrics/<name>/<name>.py``.
``accuracy`` and ``f1`` score class ids; ``seqeval`` scores tag sequences (token classification)."""

from softprompt.layout import IGNORE_INDEX  # noqa: E402  (one definition, in layout)

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

    Example:
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


def _class_ids(predictions: Any, references: Any) -> tuple[np.ndarray, np.ndarray]:
    """Turn model outputs and labels into two equal-length 1-D arrays of class ids.

    Scores with a trailing class axis are argmaxed; token-level arrays are flattened and the
    positions labelled -100 dropped.
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


def _score(
    modules: dict[str, evaluate.EvaluationModule], preds: np.ndarray, refs: np.ndarray
) -> dict[str, float]:
    return {
        name: float(module.compute(predictions=preds, references=refs, **_COMPUTE_KWARGS[name])[name])
        for name, module in modules.items()
    }


def _load_all(metrics: Sequence[str]) -> dict[str, evaluate.EvaluationModule]:
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


def compute_task_metrics(
    task: Task, predictions: Any, references: Any, *, id2label: Mapping[int, str] | None = None
) -> dict[str, float]:
    """Score a head's raw outputs for ``task``: see :attr:`Task.metric_names`.

    Args:
        task: The :class:`~softprompt.Task`.
        predictions: Logits ``(N, C)`` (``(N, 1)`` or ``(N,)`` for regression); ``(N, T, C)`` for
            token classification; answer texts (or :class:`~softprompt.Answer` objects) for
            question answering.
        references: Class ids ``(N,)``; 0/1 ``(N, C)`` for multi-label; values ``(N,)`` for
            regression; tag ids ``(N, T)`` with ``-100`` where nothing is scored for token
            classification; each question's gold answer texts for question answering (SQuAD-normalised
            exact match and F1, :func:`softprompt.metrics.squad.squad_scores`).
        id2label: Token classification only (and required there): the tag names by id, which
            entity-level scores read (``B-PER``...).

    Raises:
        ValueError: token classification without IOB-style tag names in ``id2label``, or outputs
            that do not fit the task.

    Example:
        >>> compute_task_metrics(Task("regression"), [[0.9], [2.1], [2.9]], [1.0, 2.0, 3.0])["spearman"]
        1.0
        >>> compute_task_metrics(Task("question-answering"), ["the Louvre", "1889"], [["Louvre"], ["in 1889"]])
        {'exact_match': 0.5, 'f1': 0.8333333333333333}
    """
    if not isinstance(task, Task):
        raise TypeError(f"task must be a softprompt.Task, got {type(task).__name__}")
    if task.is_question_answering:
        texts = [getattr(p, "text", p) for p in predictions]  # Answer objects or texts
        return squad_scores(texts, [list(r) for r in references])
    if task.is_text_to_label:  # generated class words (GeneratedPrediction or class ids, None: no class)
        from softprompt.text_to_label import text_to_label_scores

        if not id2label:
            raise ValueError("text-to-label scores need the class names: pass id2label=")
        predicted = [getattr(p, "label", p) for p in predictions]
        return text_to_label_scores(predicted, [int(r) for r in references], len(id2label))
    if task.is_token_level:
        from softprompt.data.tags import checked_tag_names

        return token_classification_scores(predictions, references, checked_tag_names(id2label))
    if task.type is TaskType.REGRESSION:
        return regression_scores(predictions, references)
    if task.type is TaskType.MULTI_LABEL:
        if isinstance(predictions, tuple):
            predictions = predictions[0]
        logits = np.asarray(predictions, dtype=np.float64)
        # sigmoid(z) >= t  <=>  z >= log(t / (1 - t)): no overflow for large logits
        decisions = (logits >= np.log(task.threshold / (1 - task.threshold))).astype(np.int64)
        refs = references[0] if isinstance(references, tuple) else references
        return multi_label_scores(decisions, np.rint(np.asarray(refs, dtype=np.float64)).astype(np.int64))
    return compute_classification_metrics(predictions, references)


def build_compute_metrics(
    metrics: Sequence[str] = ("accuracy", "f1"),
    *,
    task: Task | None = None,
    id2label: Mapping[int, str] | None = None,
    eval_dataset: datasets.Dataset | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> Callable[[EvalPrediction], dict[str, float]]:
    """Build a ``compute_metrics`` function for ``transformers.Trainer``.

    With a multi-label, regression or token-classification ``task``, the function reports that
    task's metrics (:func:`compute_task_metrics`) and ``metrics`` is not used; token
    classification needs its tag names, ``id2label`` (checked here, before training). Question
    answering scores the answers of the tokenized evaluation windows, ``eval_dataset``, made by
    ``tokenizer`` (:func:`softprompt.qa_inference.qa_compute_metrics`; ``Trainer`` must run with
    ``include_for_metrics=["inputs"]``, as :func:`softprompt.train_prompt` does). Otherwise:

    The metric modules are loaded once, here, so a bad name fails before training starts.
    The returned function argmaxes ``predictions`` over the last axis (taking the first element
    when they are a tuple), and reports ``"accuracy"`` and the macro-averaged F1 as ``"f1"``.
    Predictions that are already class ids (from ``preprocess_logits_for_metrics``) are used as
    they are. For token classification (labels of shape ``(N, T)``), positions labelled -100 are
    left out.

    Args:
        metrics: Names from :data:`METRIC_NAMES`, scored in this order. A single string is one name.

    Returns:
        A function mapping a ``transformers.EvalPrediction`` to ``{name: float}``.

    Raises:
        ValueError: at build time, an unknown or empty metric list; at call time, predictions and
            labels whose shapes or dtypes cannot be class ids (the message gives both shapes), or
            sequence-level labels equal to -100.

    Example:
        >>> import numpy as np
        >>> from transformers import EvalPrediction
        >>> compute_metrics = build_compute_metrics()
        >>> logits = np.array([[2.0, 0.1], [0.3, 0.9], [0.2, 0.8], [1.0, 0.0]])
        >>> compute_metrics(EvalPrediction(predictions=logits, label_ids=np.array([0, 1, 0, 0])))
        {'accuracy': 0.75, 'f1': 0.7333333333333334}
    """
    if task is not None and task.is_question_answering:
        if eval_dataset is None or tokenizer is None:
            raise ValueError(
                "question-answering metrics score answers: pass eval_dataset= (the tokenized evaluation windows) "
                "and tokenizer="
            )
        from softprompt.qa_inference import qa_compute_metrics

        return qa_compute_metrics(eval_dataset, tokenizer)
    if task is not None and not task.is_classification:
        from softprompt.data.tags import checked_tag_names

        names = checked_tag_names(id2label) if task.is_token_level else None

        def compute_task(eval_pred: EvalPrediction) -> dict[str, float]:
            return compute_task_metrics(task, eval_pred.predictions, eval_pred.label_ids, id2label=names)

        return compute_task
    modules = _load_all(metrics)

    def compute_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
        preds, refs = _class_ids(eval_pred.predictions, eval_pred.label_ids)
        return _score(modules, preds, refs)

    return compute_metrics


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

    Example:
        >>> compute_classification_metrics(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]))
        {'accuracy': 0.75, 'f1': 0.7333333333333334}
    """
    modules = _load_all(metrics)
    preds, refs = _class_ids(predictions, references)
    return _score(modules, preds, refs)
