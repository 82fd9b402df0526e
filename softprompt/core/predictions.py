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


class _Record:
    """A prediction that turns into plain JSON (what ``softprompt predict`` writes, one line per input)."""

    def to_dict(self) -> dict[str, Any]:
        """The prediction's fields as a plain dict, ready for ``json.dumps``.

        Returns:
            Field name to value.

        Examples:
            >>> Prediction(label=1, label_name="pos", confidence=0.93).to_dict()
            {'label': 1, 'label_name': 'pos', 'confidence': 0.93}
        """
        return asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class Prediction(_Record):
    """Single-label classification: class id, class name and calibrated confidence (softmax probability).

    Attributes:
        label: The class id.
        label_name: Its name (``id2label``).
        confidence: Its probability after the prompt's temperature.

    Examples:
        >>> wrapper.predict(["a great product"])[0]
        Prediction(label=..., label_name=..., confidence=...)
    """

    label: int
    label_name: str
    confidence: float


@dataclass(frozen=True)
class GeneratedPrediction(Prediction):
    """Text-to-label: the class whose word the model generated, or ``None`` when the text names no class.

    Attributes:
        label: The class id, ``None`` if ``text`` is no class's word (never mapped to the nearest one).
        label_name: The class's name (``id2label``), ``None`` with ``label``.
        confidence: The probability of the generated tokens, end of sequence included.
        text: What the model generated (special tokens dropped, whitespace stripped).

    Examples:
        >>> GeneratedPrediction(label=None, label_name=None, confidence=0.4, text="maybe").to_dict()["label"] is None
        True
    """

    label: int | None  # type: ignore[assignment]
    label_name: str | None  # type: ignore[assignment]
    confidence: float
    text: str


@dataclass(frozen=True)
class MultiLabelPrediction(_Record):
    """Multi-label classification: the classes whose sigmoid probability reaches the threshold, and every score.

    Attributes:
        labels: Predicted class ids, ascending (may be empty).
        label_names: Their names.
        scores: ``{class name: probability}`` for every class.

    Examples:
        >>> MultiLabelPrediction(labels=[0, 2], label_names=["a", "c"], scores={"a": 0.9, "b": 0.1, "c": 0.7}).labels
        [0, 2]
    """

    labels: list[int]
    label_names: list[str]
    scores: dict[str, float]


@dataclass(frozen=True)
class RegressionPrediction(_Record):
    """Regression: the predicted value.

    Attributes:
        value: The head's output, in the labels' units.

    Examples:
        >>> RegressionPrediction(value=3.5).to_dict()
        {'value': 3.5}
    """

    value: float


@dataclass(frozen=True)
class Entity(_Record):
    """Token classification: one entity found in a text, with its character span.

    Attributes:
        entity_type: The tag's type without its prefix (``"PER"`` for ``B-PER``/``I-PER``).
        start: Character offset of its first character in the text.
        end: Character offset after its last one: ``text[start:end]`` is the entity.
        text: The entity's text (whole words, punctuation attached to them included).
        score: The mean over its words of each word's tag probability (softmax at its first sub-word).

    Examples:
        >>> text = "Ada Lovelace lived in London"
        >>> e = Entity(entity_type="PER", start=0, end=12, text="Ada Lovelace", score=0.98)
        >>> text[e.start : e.end] == e.text
        True
    """

    entity_type: str
    start: int
    end: int
    text: str
    score: float


@dataclass(frozen=True)
class Answer(_Record):
    """Extractive question answering: the answer found in the context, with its character span.

    Attributes:
        text: The answer, ``context[start:end]`` exactly (``""`` when the context gave no token to answer with).
        start: Character offset of the answer's first character in the context.
        end: Character offset after its last one.
        score: ``p_start * p_end`` of its first and last token, each a softmax over its window's
            context tokens and ``[CLS]`` (transformers' question-answering pipeline's score).

    Examples:
        >>> context = "The photo was taken in Rome."
        >>> a = Answer(text="Rome", start=23, end=27, score=0.8)
        >>> context[a.start : a.end]
        'Rome'
    """

    text: str
    start: int
    end: int
    score: float


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
