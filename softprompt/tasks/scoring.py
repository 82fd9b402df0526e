"""Which metrics a run reports: the task's own (its family's), or the caller's ``compute_metrics``.

The one place a ``Trainer`` ``compute_metrics`` is chosen, for prompt tuning and fine-tuning alike.
``compute_metrics=`` of :func:`softprompt.train_prompt` and :func:`softprompt.finetune.finetune` accepts:

- ``None``: the task's metrics (its family's :meth:`~softprompt.tasks.base.TaskFamily.trainer_metrics`);
- a callable taking a ``transformers.EvalPrediction`` (what ``Trainer`` takes), used as it is;
- a metric name, an ``evaluate.EvaluationModule``, or a list of them (or a mapping of each to the
  keyword arguments of its ``compute``): softprompt's shipped metrics (``accuracy``, ``f1``) load
  offline; any other name is ``evaluate.load(name)``, which finds a local script path or a metric in
  the Hugging Face cache (offline, a metric never downloaded is a one-line error saying what to pass).
  Each is loaded once per process.

The head's outputs are turned into what such metrics take: class ids (argmax) for classification,
0/1 decisions per class (sigmoid > 0.5) for multi-label, the single output for regression.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from softprompt.core.task import Task
from softprompt.metrics import METRIC_NAMES, class_ids, load_metric, load_metrics, score_class_ids
from softprompt.tasks.registry import family_for

if TYPE_CHECKING:
    import datasets
    import evaluate
    from transformers import EvalPrediction, PreTrainedTokenizerBase

__all__ = [
    "MetricSpec",
    "build_compute_metrics",
    "compute_task_metrics",
    "default_best_metric",
    "resolve_compute_metrics",
]

MetricSpec = Any  # str | evaluate.EvaluationModule | Sequence[...] | Mapping[..., dict] | Callable


def _is_module(value: Any) -> bool:
    try:
        import evaluate
    except ImportError:  # pragma: no cover - a declared dependency
        return False
    return isinstance(value, evaluate.EvaluationModule)


def _as_pairs(spec: MetricSpec) -> list[tuple[Any, dict[str, Any]]]:
    """``"f1"`` / module / list / ``{"f1": {"average": "macro"}}`` -> ``[(name_or_module, kwargs)]``."""
    if isinstance(spec, str) or _is_module(spec):
        return [(spec, {})]
    if isinstance(spec, Mapping):
        pairs = []
        for key, kwargs in spec.items():
            if not isinstance(kwargs, Mapping):
                raise TypeError(
                    f"compute_metrics={{{key!r}: ...}} must map each metric to a dict of compute() keyword "
                    f"arguments, got {type(kwargs).__name__}"
                )
            pairs.append((key, dict(kwargs)))
        return pairs
    if isinstance(spec, Sequence):
        return [(item, {}) for item in spec]
    raise TypeError(
        "compute_metrics must be a callable taking an EvalPrediction, an evaluate metric name or module, "
        f"or a list of them; got {type(spec).__name__}"
    )


@functools.cache
def _load_named(name: str) -> evaluate.EvaluationModule:
    """``evaluate.load(name)`` once per process; offline, a metric never cached is a clear error."""
    import evaluate

    if name in METRIC_NAMES:
        return load_metric(name)
    try:
        return evaluate.load(name, keep_in_memory=True)
    except (FileNotFoundError, ConnectionError, OSError, ValueError) as exc:
        raise ValueError(
            f"cannot load the evaluate metric {name!r} ({' '.join(str(exc).split())[:200]}): offline, give the "
            "path of a local metric script (a folder or .py file) or a callable; softprompt ships 'accuracy' "
            "and 'f1'"
        ) from exc


def _module(item: Any) -> evaluate.EvaluationModule:
    if _is_module(item):
        return item
    if not isinstance(item, str) or not item.strip():
        raise TypeError(f"a metric must be an evaluate metric name, path or module, got {item!r}")
    return _load_named(item)


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

    Returns:
        ``{metric name: value}`` for each of the task's ``metric_names``.

    Raises:
        TypeError: ``task`` is not a :class:`~softprompt.Task`.
        ValueError: token classification without IOB-style tag names in ``id2label``, or outputs
            that do not fit the task.

    Examples:
        >>> compute_task_metrics(Task("regression"), [[0.9], [2.1], [2.9]], [1.0, 2.0, 3.0])["spearman"]
        1.0
        >>> compute_task_metrics(Task("question-answering"), ["the Louvre", "1889"], [["Louvre"], ["in 1889"]])
        {'exact_match': 0.5, 'f1': 0.8333333333333333}
    """
    if not isinstance(task, Task):
        raise TypeError(f"task must be a softprompt.Task, got {type(task).__name__}")
    return family_for(task).score(task, predictions, references, id2label)


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
    ``tokenizer`` (:func:`softprompt.tasks.answers.qa_compute_metrics`; ``Trainer`` must run with
    ``include_for_metrics=["inputs"]``, as :func:`softprompt.train_prompt` does). Otherwise:

    The metric modules are loaded once, here, so a bad name fails before training starts.
    The returned function argmaxes ``predictions`` over the last axis (taking the first element
    when they are a tuple), and reports ``"accuracy"`` and the macro-averaged F1 as ``"f1"``.
    Predictions that are already class ids (from ``preprocess_logits_for_metrics``) are used as
    they are. For token classification (labels of shape ``(N, T)``), positions labelled -100 are
    left out.

    Args:
        metrics: Names from :data:`METRIC_NAMES`, scored in this order. A single string is one name.
        task: The task whose metrics to report instead (multi-label, regression, token classification,
            question answering); ``None`` or classification: ``metrics``.
        id2label: The class or tag names (token classification needs them).
        eval_dataset: Question answering: the tokenized evaluation windows the predictions are for.
        tokenizer: Question answering: the tokenizer that made them.

    Returns:
        A function mapping a ``transformers.EvalPrediction`` to ``{name: float}``.

    Raises:
        ValueError: at build time, an unknown or empty metric list; at call time, predictions and
            labels whose shapes or dtypes cannot be class ids (the message gives both shapes), or
            sequence-level labels equal to -100.

    Examples:
        >>> import numpy as np
        >>> from transformers import EvalPrediction
        >>> compute_metrics = build_compute_metrics()
        >>> logits = np.array([[2.0, 0.1], [0.3, 0.9], [0.2, 0.8], [1.0, 0.0]])
        >>> compute_metrics(EvalPrediction(predictions=logits, label_ids=np.array([0, 1, 0, 0])))
        {'accuracy': 0.75, 'f1': 0.7333333333333334}
    """
    if task is not None and not task.is_classification:
        family = family_for(task)
        if family.metrics_need_windows and (eval_dataset is None or tokenizer is None):
            raise ValueError(
                "question-answering metrics score answers: pass eval_dataset= (the tokenized evaluation windows) "
                "and tokenizer="
            )
        return family.trainer_metrics(task, id2label, eval_dataset=eval_dataset, tokenizer=tokenizer)
    modules = load_metrics(metrics)

    def compute_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
        preds, refs = class_ids(eval_pred.predictions, eval_pred.label_ids)
        return score_class_ids(modules, preds, refs)

    return compute_metrics


def resolve_compute_metrics(
    spec: MetricSpec | None,
    task: Task | None,
    id2label: Mapping[int, str] | None,
    *,
    eval_dataset: datasets.Dataset | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> Callable[[EvalPrediction], dict[str, float]]:
    """A ``Trainer`` ``compute_metrics`` from ``spec`` (see the module docstring); ``None``: the task's own.

    Metrics are loaded here, so a bad name fails before training starts.

    Raises:
        TypeError: ``spec`` of another kind.
        ValueError: an empty list, a metric that cannot be loaded, or names for a task scored per token
            or per answer (pass a callable there).

    Examples:
        >>> import numpy as np
        >>> from transformers import EvalPrediction
        >>> fn = resolve_compute_metrics("accuracy", Task("classification"), None)
        >>> fn(EvalPrediction(predictions=np.array([[2.0, 0.1], [0.3, 0.9]]), label_ids=np.array([0, 0])))
        {'accuracy': 0.5}
    """
    task = task or Task()
    family = family_for(task)
    if spec is None:
        return family.trainer_metrics(task, id2label, eval_dataset=eval_dataset, tokenizer=tokenizer)
    if callable(spec) and not _is_module(spec):
        return spec
    pairs = _as_pairs(spec)
    if not pairs:
        raise ValueError("compute_metrics is an empty list; name at least one metric, or pass None")
    if not family.takes_metric_names:
        raise ValueError(
            f"metric names score class ids or values; a {task.type.value} task is scored per token or per "
            "answer: pass a callable compute_metrics, or None for the task's own metrics"
        )
    modules = [(_module(item), kwargs) for item, kwargs in pairs]

    def compute_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
        preds, refs, kind = family.metric_inputs(task, eval_pred.predictions, eval_pred.label_ids)
        out: dict[str, float] = {}
        for module, kwargs in modules:
            try:
                scores = module.compute(predictions=preds, references=refs, **kwargs) or {}
            except ValueError as exc:
                raise ValueError(
                    f"metric {module.name!r} cannot score a {task.type.value} head's outputs, given as "
                    f"{kind} of shape {preds.shape}: {' '.join(str(exc).split())[:300]}"
                ) from exc
            for key, value in scores.items():
                name = key if key not in out else f"{module.name}_{key}"
                out[name] = float(value) if np.isscalar(value) else value
        return out

    return compute_metrics


def default_best_metric(spec: MetricSpec | None) -> str | None:
    """The metric that keeps the best checkpoint when ``spec`` names metrics: the first one's name.

    ``None`` for the task's metrics or a callable (the task's default stays).

    Examples:
        >>> default_best_metric(["f1", "accuracy"])
        'f1'
    """
    if spec is None or (callable(spec) and not _is_module(spec)):
        return None
    pairs = _as_pairs(spec)
    if not pairs:
        return None
    return _module(pairs[0][0]).name  # a path names its script; evaluate knows the metric's own name
