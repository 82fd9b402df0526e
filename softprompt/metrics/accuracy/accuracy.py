"""Accuracy as an offline `evaluate` metric: the fraction of predictions equal to their references.

``evaluate.load("accuracy")`` fetches its script from the Hugging Face Hub; this file ships inside
softprompt, so ``evaluate.load(<path of this file>)`` (what ``softprompt.metrics.load_metric``
does) works with no network.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """\
Accuracy is the proportion of correct predictions among all predictions:
accuracy = (number of predictions equal to their reference) / (number of predictions).
With `sample_weight`, each prediction counts with its weight instead of 1.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (list of int): predicted class ids.
    references (list of int): true class ids, same length as `predictions`.
    normalize (bool): return the fraction of correct predictions (default) or,
        if False, the (weighted) number of correct predictions.
    sample_weight (list of float, optional): one non-negative weight per prediction.
Returns:
    dict: {"accuracy": float}
Examples:
    >>> import evaluate
    >>> accuracy = evaluate.load("softprompt/metrics/accuracy/accuracy.py")
    >>> accuracy.compute(predictions=[0, 1, 1, 0], references=[0, 1, 0, 0])
    {'accuracy': 0.75}
"""

_CITATION = ""


class Accuracy(evaluate.Metric):
    """Accuracy of class-id predictions (same numbers as scikit-learn's ``accuracy_score``)."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
            format="numpy",
            reference_urls=["https://en.wikipedia.org/wiki/Accuracy_and_precision"],
        )

    def _compute(
        self,
        predictions: np.ndarray,
        references: np.ndarray,
        normalize: bool = True,
        sample_weight: list[float] | np.ndarray | None = None,
    ) -> dict[str, float]:
        predictions = np.asarray(predictions, dtype=np.int64)
        references = np.asarray(references, dtype=np.int64)
        if predictions.size == 0:
            raise ValueError("accuracy got no predictions; pass at least one prediction and reference")
        correct = (predictions == references).astype(np.float64)
        if sample_weight is None:
            weights = np.ones_like(correct)
        else:
            weights = np.asarray(sample_weight, dtype=np.float64)
            if weights.shape != correct.shape:
                raise ValueError(
                    f"accuracy got {weights.size} sample weights for {correct.size} predictions; "
                    "pass one weight per prediction"
                )
            if (weights < 0).any():
                raise ValueError(
                    f"accuracy got a negative sample weight {weights.min()}; weights must be >= 0"
                )
        score = float(np.sum(correct * weights))
        if normalize:
            total = float(np.sum(weights))
            if total == 0:
                raise ValueError("accuracy got sample weights that sum to 0; nothing to normalise by")
            score /= total
        return {"accuracy": score}
