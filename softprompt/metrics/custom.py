"""A caller's own metrics for ``Trainer``: ``evaluate`` metric names, modules, or a ``compute_metrics`` callable.

``train_prompt(..., compute_metrics=...)`` and ``finetune(..., compute_metrics=...)`` accept:

- ``None``: the task's metrics (:func:`softprompt.metrics.build_compute_metrics`);
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

from softprompt.task import Task, TaskType

if TYPE_CHECKING:
    import evaluate
    from transformers import EvalPrediction

__all__ = ["MetricSpec", "default_best_metric", "resolve_compute_metrics"]

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

    from softprompt.metrics import METRIC_NAMES, load_metric

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


_kind = {
    TaskType.CLASSIFICATION: "class ids",
    TaskType.MULTI_LABEL: "0/1 decisions per class (a metric with a multi-label configuration takes them)",
    TaskType.REGRESSION: "values",
}


def _head_outputs(task: Task, predictions: Any, references: Any) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels -> what an ``evaluate`` metric takes for ``task``."""
    from softprompt.metrics import _class_ids

    if task.type is TaskType.REGRESSION:
        preds = np.asarray(
            predictions[0] if isinstance(predictions, tuple) else predictions, dtype=np.float64
        )
        refs = np.asarray(references[0] if isinstance(references, tuple) else references, dtype=np.float64)
        return preds.reshape(len(preds), -1)[:, 0], refs.reshape(-1)  # (N, 1) -> (N,)
    if task.type is TaskType.MULTI_LABEL:
        logits = np.asarray(
            predictions[0] if isinstance(predictions, tuple) else predictions, dtype=np.float64
        )
        refs = np.asarray(references[0] if isinstance(references, tuple) else references)
        return (logits > 0).astype(np.int64), np.rint(refs).astype(np.int64)  # sigmoid > 0.5, (N, C)
    return _class_ids(predictions, references)


def resolve_compute_metrics(
    spec: MetricSpec | None, task: Task | None, id2label: Mapping[int, str] | None
) -> Callable[[EvalPrediction], dict[str, float]]:
    """A ``Trainer`` ``compute_metrics`` from ``spec`` (see the module docstring); ``None``: the task's own.

    Metrics are loaded here, so a bad name fails before training starts.

    Raises:
        TypeError: ``spec`` of another kind.
        ValueError: an empty list, a metric that cannot be loaded, or names for a task scored per token
            or per answer (pass a callable there).

    Example:
        >>> import numpy as np
        >>> from transformers import EvalPrediction
        >>> fn = resolve_compute_metrics("accuracy", Task("classification"), None)
        >>> fn(EvalPrediction(predictions=np.array([[2.0, 0.1], [0.3, 0.9]]), label_ids=np.array([0, 0])))
        {'accuracy': 0.5}
    """
    task = task or Task()
    if spec is None:
        from softprompt.trainer_parts import task_compute_metrics

        return task_compute_metrics(task, id2label)
    if callable(spec) and not _is_module(spec):
        return spec
    pairs = _as_pairs(spec)
    if not pairs:
        raise ValueError("compute_metrics is an empty list; name at least one metric, or pass None")
    if task.type not in (TaskType.CLASSIFICATION, TaskType.MULTI_LABEL, TaskType.REGRESSION):
        raise ValueError(
            f"metric names score class ids or values; a {task.type.value} task is scored per token or per "
            "answer: pass a callable compute_metrics, or None for the task's own metrics"
        )
    modules = [(_module(item), kwargs) for item, kwargs in pairs]

    def compute_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
        preds, refs = _head_outputs(task, eval_pred.predictions, eval_pred.label_ids)
        out: dict[str, float] = {}
        for module, kwargs in modules:
            try:
                scores = module.compute(predictions=preds, references=refs, **kwargs) or {}
            except ValueError as exc:
                raise ValueError(
                    f"metric {module.name!r} cannot score a {task.type.value} head's outputs, given as "
                    f"{_kind[task.type]} of shape {preds.shape}: {' '.join(str(exc).split())[:300]}"
                ) from exc
            for key, value in scores.items():
                name = key if key not in out else f"{module.name}_{key}"
                out[name] = float(value) if np.isscalar(value) else value
        return out

    return compute_metrics


def default_best_metric(spec: MetricSpec | None) -> str | None:
    """The metric that keeps the best checkpoint when ``spec`` names metrics: the first one's name.

    ``None`` for the task's metrics or a callable (the task's default stays).

    Example:
        >>> default_best_metric(["f1", "accuracy"])
        'f1'
    """
    if spec is None or (callable(spec) and not _is_module(spec)):
        return None
    pairs = _as_pairs(spec)
    if not pairs:
        return None
    return _module(pairs[0][0]).name  # a path names its script; evaluate knows the metric's own name
