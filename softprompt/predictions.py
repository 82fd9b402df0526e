"""What ``predict`` returns, per task: a class and its confidence (or a generated class word), a set of classes, a
value, entity spans, or an answer.

:func:`decode` turns a sequence head's logits into these, the one place where a task's outputs are
read; :func:`group_entities` turns a token head's word-level tags into :class:`Entity` spans.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from softprompt.task import Task, TaskType

__all__ = [
    "Answer",
    "Entity",
    "GeneratedPrediction",
    "MultiLabelPrediction",
    "Prediction",
    "RegressionPrediction",
    "decode",
    "group_entities",
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


def _split_tag(tag: str) -> tuple[str, str]:
    """``("B", "PER")`` for ``B-PER``; a tag without a B-/I-/E-/S- prefix continues as ``("I", tag)``."""
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BIES":
        return tag[0], tag[2:]
    return "I", tag


def group_entities(
    text: str, spans: Sequence[tuple[int, int] | None], tags: Sequence[str | None], scores: Sequence[float]
) -> list[Entity]:
    """Entities from word-level tags, grouped as transformers' token-classification pipeline groups words.

    A word joins the entity before it when it has the same type and its prefix is not ``B-`` (nor
    ``S-``, and the entity did not end with ``E-``/``S-``); ``O`` words and words without a tag
    (``None``: cut off by truncation) belong to no entity. An entity's score is the mean of its
    words' scores.

    Args:
        text: The text the spans point into.
        spans: Each word's ``(start, end)`` in ``text``.
        tags: Each word's predicted tag name (``None``: no prediction).
        scores: Each word's tag probability.

    Example:
        >>> group_entities("Ada Lovelace met Babbage", [(0, 3), (4, 12), (13, 16), (17, 24)],
        ...                ["B-PER", "I-PER", "O", "B-PER"], [0.9, 0.7, 0.99, 0.8])[0]
        Entity(entity_type='PER', start=0, end=12, text='Ada Lovelace', score=0.8)
    """
    groups: list[tuple[str, list[int]]] = []  # (type, word indices)
    last_prefix = ""
    for i, tag in enumerate(tags):
        if tag is None or tag == "O":
            last_prefix = ""
            continue
        prefix, kind = _split_tag(tag)
        # last_prefix is set only while the word before this one is in the last group
        if last_prefix and prefix in ("I", "E") and last_prefix not in ("E", "S") and groups[-1][0] == kind:
            groups[-1][1].append(i)
        else:
            groups.append((kind, [i]))
        last_prefix = prefix
    out = []
    for kind, words in groups:
        start, end = spans[words[0]][0], spans[words[-1]][1]  # type: ignore[index]
        out.append(Entity(kind, start, end, text[start:end], sum(scores[w] for w in words) / len(words)))
    return out


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
