"""F1 score as an offline `evaluate` metric, with macro (default), micro, weighted and binary averaging.

``evaluate.load("f1")`` fetches its script from the Hugging Face Hub and needs scikit-learn; this
file ships inside softprompt and computes the same numbers with numpy, with no network.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

_AVERAGES = ("binary", "macro", "micro", "weighted")

_DESCRIPTION = """\
The F1 score is the harmonic mean of precision and recall. For one class c:
F1_c = 2 * TP_c / (2 * TP_c + FP_c + FN_c). The classes are those that occur in the
predictions or the references (as scikit-learn does), sorted by id. Averages:
- macro (the default here; the Hub's f1 defaults to binary): the unweighted mean of F1_c.
- weighted: the mean of F1_c weighted by the number of references of class c.
- micro: F1 of the pooled counts, 2 * sum TP / (2 * sum TP + sum FP + sum FN); equal to
  accuracy for single-label classification.
- binary: F1_c of the class `pos_label` only; at most two classes may occur.
A class with no true positives has F1_c = 0.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (list of int): predicted class ids.
    references (list of int): true class ids, same length as `predictions`.
    average (str): one of "macro" (default), "micro", "weighted", "binary".
    pos_label (int): the positive class for average="binary" (default 1).
Returns:
    dict: {"f1": float}
Examples:
    >>> import evaluate
    >>> f1 = evaluate.load("softprompt/metrics/f1/f1.py")
    >>> f1.compute(predictions=[0, 1, 1, 0], references=[0, 1, 0, 0])
    {'f1': 0.7333333333333334}
"""

_CITATION = ""


class F1(evaluate.Metric):
    """F1 of class-id predictions (same numbers as scikit-learn's ``f1_score``)."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
            format="numpy",
            reference_urls=["https://en.wikipedia.org/wiki/F-score"],
        )

    def _compute(
        self,
        predictions: np.ndarray,
        references: np.ndarray,
        average: str = "macro",
        pos_label: int = 1,
    ) -> dict[str, float]:
        if average not in _AVERAGES:
            raise ValueError(f"f1 got average={average!r}; choose one of {', '.join(map(repr, _AVERAGES))}")
        predictions = np.asarray(predictions, dtype=np.int64)
        references = np.asarray(references, dtype=np.int64)
        if predictions.size == 0:
            raise ValueError("f1 got no predictions; pass at least one prediction and reference")

        # Every class seen in either array, sorted; `index` maps each value to its class position.
        classes, index = np.unique(np.concatenate([predictions, references]), return_inverse=True)
        pred_idx, ref_idx = index[: predictions.size], index[predictions.size :]
        n = classes.size
        predicted = np.bincount(pred_idx, minlength=n)  # TP_c + FP_c
        actual = np.bincount(ref_idx, minlength=n)  # TP_c + FN_c (the support)
        true_pos = np.bincount(ref_idx[pred_idx == ref_idx], minlength=n)
        denom = predicted + actual  # = 2 TP_c + FP_c + FN_c, > 0 for every class in `classes`

        if average == "binary":
            if n > 2:
                raise ValueError(
                    f"f1 with average='binary' needs at most 2 classes but found {classes.tolist()}; "
                    "use average='macro', 'micro' or 'weighted'"
                )
            if pos_label not in classes:
                if n == 2:
                    raise ValueError(
                        f"f1 got pos_label={pos_label!r}, which is not one of the classes {classes.tolist()}; "
                        "pass pos_label set to the positive class id"
                    )
                return {"f1": 0.0}  # the positive class never occurs: no true positives
            c = int(np.flatnonzero(classes == pos_label)[0])
            return {"f1": float(2 * true_pos[c] / denom[c])}
        if average == "micro":
            return {"f1": float(2 * true_pos.sum() / denom.sum())}
        per_class = 2 * true_pos / denom
        if average == "macro":
            return {"f1": float(per_class.mean())}
        return {"f1": float(np.sum(per_class * actual) / actual.sum())}  # weighted
