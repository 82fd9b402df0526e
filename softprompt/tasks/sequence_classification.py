"""Sequence tasks: one class (classification), a set of classes (multi-label) or a number (regression) per text
or text pair, from a ``*ForSequenceClassification`` head (or a decoder classifier's).

Labels are class ids, 0/1 vectors or floats; batches pad with ``DataCollatorWithPadding``; logits are
decoded by :func:`decode` (softmax with a temperature, sigmoid and a
threshold, or the value itself) and scored with accuracy/F1, micro/macro F1 or Pearson/Spearman/MSE.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from softprompt.core.predictions import MultiLabelPrediction, Prediction, RegressionPrediction, to_predictions
from softprompt.core.task import Task, TaskType
from softprompt.engine.logits import predict_logits
from softprompt.metrics import class_ids, compute_classification_metrics, load_metrics, score_class_ids
from softprompt.metrics.scores import multi_label_scores, regression_scores
from softprompt.tasks.base import Call, Labels, Metrics, TaskFamily, with_timing

if TYPE_CHECKING:
    import datasets
    from torch import nn

__all__ = ["SequenceClassification", "check_labels", "decode"]


def check_labels(
    dataset: datasets.Dataset | None, name: str, task: Task | None, num_labels: int | None
) -> None:
    """Labels fit the head before training: class ids in ``[0, num_labels)``, 0/1 vectors of
    ``num_labels`` entries (multi-label) or one finite value per row (regression).

    Raises:
        ValueError: the first misfit, naming ``name`` and the fix.
    """
    if dataset is None or task is None or "labels" not in dataset.column_names:
        return
    labels = np.asarray(dataset.with_format("numpy")["labels"])
    if task.type is TaskType.REGRESSION:
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.floating) or not np.isfinite(labels).all():
            raise ValueError(
                f"{name}: a regression head needs one finite float per row, got dtype {labels.dtype} and shape "
                f"{labels.shape}; load the data with task='regression'"
            )
        return
    if task.type is TaskType.MULTI_LABEL:
        if labels.ndim != 2 or labels.shape[1] != num_labels or not np.isin(labels, (0, 1)).all():
            raise ValueError(
                f"{name}: a multi-label head with {num_labels} classes needs 0/1 vectors of {num_labels} floats per row, "
                f"got shape {labels.shape}"
            )
        return
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{name} labels must be integer class ids for a classification head, got dtype {labels.dtype} and shape "
            f"{labels.shape}; for multi-label or regression data load the model with that problem_type "
            "(from_pretrained(..., **data.model_kwargs()))"
        )
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= (num_labels or 0):
        raise ValueError(
            f"{name} has labels {low}..{high} but the model has num_labels={num_labels} (ids 0..{(num_labels or 1) - 1}); "
            f"load the model with num_labels={max(high + 1, num_labels or 0)} or fix the labels"
        )


def decode(
    logits: torch.Tensor,
    task: Task | None,
    id2label: dict[int, str] | None = None,
    *,
    temperature: float = 1.0,
) -> list[Prediction] | list[MultiLabelPrediction] | list[RegressionPrediction]:
    """Predictions from ``(n, C)`` logits for ``task`` (``None`` reads as single-label classification).

    Args:
        logits: The head's raw outputs, ``(n, C)`` (``(n, 1)`` for regression).
        task: The :class:`~softprompt.Task`.
        id2label: Class names by id (ids are used where a name is missing).
        temperature: Softmax temperature (classification only; confidences are
            ``softmax(logits / temperature)``).

    Returns:
        One :class:`~softprompt.Prediction`, :class:`~softprompt.MultiLabelPrediction` or
        :class:`~softprompt.RegressionPrediction` per row.

    Raises:
        ValueError: a bad temperature, or logits whose width does not fit the task.

    Examples:
        >>> decode(torch.tensor([[2.5], [-1.0]]), Task("regression"))
        [RegressionPrediction(value=2.5), RegressionPrediction(value=-1.0)]
        >>> decode(torch.tensor([[3.0, -3.0, 0.5]]), Task("multi-label"), {0: "a", 1: "b", 2: "c"})[0].label_names
        ['a', 'c']
    """
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    task = task or Task()
    names = id2label or {}
    logits = logits.float()
    if logits.dim() != 2 or (
        logits.shape[0] and (logits.shape[1] == 1) != (task.type is TaskType.REGRESSION)
    ):
        raise ValueError(f"logits of shape {tuple(logits.shape)} do not fit a {task.type.value} head")
    if task.type is TaskType.REGRESSION:
        return [RegressionPrediction(float(v)) for v in logits[:, 0].tolist()]
    if task.type is TaskType.MULTI_LABEL:
        probs = torch.sigmoid(logits)
        out = []
        for row in probs.tolist():
            chosen = [i for i, p in enumerate(row) if p >= task.threshold]
            out.append(
                MultiLabelPrediction(
                    labels=chosen,
                    label_names=[str(names.get(i, i)) for i in chosen],
                    scores={str(names.get(i, i)): float(p) for i, p in enumerate(row)},
                )
            )
        return out
    return to_predictions(torch.softmax(logits / temperature, dim=-1), names)


_kind = {
    TaskType.CLASSIFICATION: "class ids",
    TaskType.MULTI_LABEL: "0/1 decisions per class (a metric with a multi-label configuration takes them)",
    TaskType.REGRESSION: "values",
}


def _head_outputs(task: Task, predictions: Any, references: Any) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels -> what an ``evaluate`` metric takes for ``task``."""
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
    return class_ids(predictions, references)


class SequenceClassification(TaskFamily):
    """Classification, multi-label classification and regression of single texts or text pairs.

    Examples:
        >>> family = SequenceClassification()
        >>> family.score(Task("regression"), [[0.9], [2.1], [2.9]], [1.0, 2.0, 3.0])["spearman"]
        1.0
    """

    name: ClassVar[str] = "sequence-classification"
    task_types: ClassVar[tuple[TaskType, ...]] = (
        TaskType.CLASSIFICATION,
        TaskType.MULTI_LABEL,
        TaskType.REGRESSION,
    )
    takes_metric_names: ClassVar[bool] = True

    def check_labels(
        self, dataset: datasets.Dataset | None, name: str, task: Task | None, num_labels: int | None
    ) -> None:
        """Check the labels fit the head: class ids, 0/1 vectors (multi-label) or finite values (regression)."""
        check_labels(dataset, name, task, num_labels)

    def score(
        self, task: Task, predictions: Any, references: Any, id2label: Mapping[int, str] | None = None
    ) -> dict[str, float]:
        """The task's metrics of ``(N, C)`` logits against labels (:func:`softprompt.compute_task_metrics`)."""
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

    def trainer_metrics(
        self, task: Task, id2label: Labels, *, eval_dataset: Any = None, tokenizer: Any = None
    ) -> Metrics:
        """``compute_metrics`` for ``Trainer``: the task's metrics of each evaluation's logits."""
        if not task.is_classification:

            def compute_task(eval_pred: Any) -> dict[str, float]:
                return self.score(task, eval_pred.predictions, eval_pred.label_ids)

            return compute_task
        modules = load_metrics(("accuracy", "f1"))  # loaded once, here: a failure shows before training

        def compute_metrics(eval_pred: Any) -> dict[str, float]:
            preds, refs = class_ids(eval_pred.predictions, eval_pred.label_ids)
            return score_class_ids(modules, preds, refs)

        return compute_metrics

    def metric_inputs(self, task: Task, predictions: Any, references: Any) -> tuple[Any, Any, str]:
        """Predicted class ids (or values) and labels as a user's ``evaluate`` metric takes them, and what they are."""
        preds, refs = _head_outputs(task, predictions, references)
        return preds, refs, _kind[task.type]

    def predict(self, model: nn.Module, tokenizer: Any, texts: Sequence[Any], call: Call) -> list[Any]:
        """One prediction per text from the model's logits (:func:`decode`)."""
        # predict_logits validates the texts (before it looks at the names)
        count = len(texts) if isinstance(texts, Sequence) and not isinstance(texts, str) else 0
        logits = predict_logits(
            model, tokenizer, texts, prompt_names=call.prompt_names(count), **call.batching
        )
        if logits.numel() == 0:
            return []
        return decode(logits, call.task, dict(call.id2label), temperature=call.temperature)  # from (n, C)

    def evaluate(
        self, model: nn.Module, tokenizer: Any, dataset: datasets.Dataset, call: Call
    ) -> dict[str, float]:
        """Logits of the evaluation rows, scored with the task's metrics."""
        inputs = (
            dataset["text"]
            if "text_pair" not in dataset.column_names
            else list(zip(dataset["text"], dataset["text_pair"]))
        )
        start = time.perf_counter()  # timed: the prediction only, as Trainer times its evaluation loop
        logits = predict_logits(model, tokenizer, inputs, **call.batching)  # (n, C)
        seconds = time.perf_counter() - start
        metrics = self.score(call.task, logits.numpy(), torch.as_tensor(dataset["label"]).numpy())
        return with_timing(metrics, len(dataset), seconds)
