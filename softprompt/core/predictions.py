"""What ``predict`` returns, per task: a class and its confidence (or a generated class word), a set of classes, a
value, entity spans, or an answer.

:func:`decode` turns a sequence head's logits into these, the one place where a task's outputs are
read; :func:`softprompt.tasks.entities.group_entities` turns a token head's word-level tags into :class:`Entity` spans.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

__all__ = [
    "Answer",
    "Entity",
    "GeneratedPrediction",
    "MultiLabelPrediction",
    "Prediction",
    "RegressionPrediction",
    "to_predictions",
]


@dataclass(frozen=True)
class Prediction:
    """Single-label classification: class id, class name and calibrated confidence (softmax probability)."""

    label: int
    label_name: str
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GeneratedPrediction(Prediction):
    """Text-to-label: the class whose word the model generated, or ``None`` when the text names no class.

    Attributes:
        label: The class id, ``None`` if ``text`` is no class's word (never mapped to the nearest one).
        label_name: The class's name (``id2label``), ``None`` with ``label``.
        confidence: The probability of the generated tokens, end of sequence included.
        text: What the model generated (special tokens dropped, whitespace stripped).
    """

    label: int | None  # type: ignore[assignment]
    label_name: str | None  # type: ignore[assignment]
    confidence: float
    text: str


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


@dataclass(frozen=True)
class Entity:
    """Token classification: one entity found in a text, with its character span.

    Attributes:
        entity_type: The tag's type without its prefix (``"PER"`` for ``B-PER``/``I-PER``).
        start, end: Character offsets in the text: ``text[start:end]`` is the entity.
        text: The entity's text (whole words, punctuation attached to them included).
        score: The mean over its words of each word's tag probability (softmax at its first sub-word).
    """

    entity_type: str
    start: int
    end: int
    text: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    """Extractive question answering: the answer found in the context, with its character span.

    Attributes:
        text: The answer, ``context[start:end]`` exactly (``""`` when the context gave no token to answer with).
        start, end: Character offsets in the context.
        score: ``p_start * p_end`` of its first and last token, each a softmax over its window's
            context tokens and ``[CLS]`` (transformers' question-answering pipeline's score).
    """

    text: str
    start: int
    end: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def to_predictions(probs: torch.Tensor, id2label: dict[int, str]) -> list[Prediction]:
    """One :class:`Prediction` per row of ``(n, C)`` probabilities: the most probable class and its probability.

    Examples:
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
