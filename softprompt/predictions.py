"""What ``predict`` returns, per task: a class and its confidence, a set of classes, or a value.

:func:`decode` turns a head's logits into these, the one place where a task's outputs are read.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from softprompt.task import Task, TaskType

__all__ = ["MultiLabelPrediction", "Prediction", "RegressionPrediction", "decode", "to_predictions"]


@dataclass(frozen=True)
class Prediction:
    """Single-label classification: class id, class name and calibrated confidence (softmax probability)."""

    label: int
    label_name: str
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MultiLabelPrediction:
    """Multi-label classification: the classes whose sigmoid probability reaches the threshold, and every score.

    Attributes:
        labels: Predicted class ids, ascending (may be empty).
        label_names: Their names.
        scores: ``{class name: probability}`` for every class.
    """

    labels: list[int]
    label_names: list[str]
    scores: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RegressionPrediction:
    """Regression: the predicted value."""

    value: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def to_predictions(probs: torch.Tensor, id2label: dict[int, str]) -> list[Prediction]:
    """One :class:`Prediction` per row of ``(n, C)`` probabilities: the most probable class and its probability.

    Example:
        >>> to_predictions(torch.tensor([[0.2, 0.8]]), {0: "neg", 1: "pos"})
        [Prediction(label=1, label_name='pos', confidence=0.800000011920929)]
    """
    if probs.shape[0] == 0:
        return []
    confidence, label = probs.max(dim=-1)
    return [
        Prediction(int(y), str(id2label.get(int(y), int(y))), float(c))
        for y, c in zip(label.tolist(), confidence.tolist())
    ]


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

    Raises:
        ValueError: a bad temperature, or logits whose width does not fit the task.

    Example:
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
