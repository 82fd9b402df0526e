"""SQuAD's answer scores: exact match and word-overlap F1 of normalised answer texts, the best over the gold answers.

Normalisation is the official SQuAD evaluation script's: lower case, punctuation removed, the
articles ``a``/``an``/``the`` removed, whitespace collapsed. A question without gold answers
(unanswerable, as in SQuAD 2.0) is right only when the prediction is empty, as the SQuAD 2.0 script
scores it. Scores are fractions in ``[0, 1]`` (the official scripts print them times 100).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

__all__ = ["answer_f1", "exact_match", "normalize_answer", "squad_scores"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces: the SQuAD script's ``normalize_answer``.

    Examples:
        >>> normalize_answer("The  Eiffel-Tower!")
        'eiffeltower'
        >>> normalize_answer("in a Paris café")
        'in paris café'
    """
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when both normalise to the same text, else 0.0.

    Examples:
        >>> exact_match("the Louvre.", "Louvre")
        1.0
    """
    return float(normalize_answer(prediction) == normalize_answer(gold))


def answer_f1(prediction: str, gold: str) -> float:
    """F1 of the normalised words the two share (counted with multiplicity); an empty side scores 1.0 only against empty.

    Examples:
        >>> answer_f1("in central Paris", "Paris")  # precision 1/3, recall 1
        0.5
    """
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not predicted or not expected:
        return float(predicted == expected)
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean ``exact_match`` and ``f1`` over questions; each question scores its best gold answer.

    Args:
        predictions: One predicted answer text per question.
        references: The gold answer texts of each question (``[]``: unanswerable, only ``""`` is right).

    Raises:
        TypeError: predictions that are not strings, or references that are not lists of strings.
        ValueError: lengths that differ, or no questions.

    Examples:
        >>> squad_scores(["Paris", "in 1889"], [["Paris", "paris, France"], ["1889"]])
        {'exact_match': 0.5, 'f1': 0.8333333333333333}
    """
    if isinstance(predictions, str) or isinstance(references, str):
        raise TypeError("predictions and references must be lists (one entry per question), not a string")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} questions")
    if not predictions:
        raise ValueError("no questions to score")
    em = f1 = 0.0
    for i, (prediction, golds) in enumerate(zip(predictions, references)):
        if not isinstance(prediction, str):
            raise TypeError(f"predictions[{i}] is {type(prediction).__name__}, not an answer text")
        if isinstance(golds, str) or not all(isinstance(g, str) for g in golds):
            raise TypeError(f"references[{i}] must be a list of answer texts, got {golds!r:.60}")
        golds = list(golds) or [""]  # unanswerable: only the empty answer is right
        em += max(exact_match(prediction, g) for g in golds)
        f1 += max(answer_f1(prediction, g) for g in golds)
    return {"exact_match": em / len(predictions), "f1": f1 / len(predictions)}
