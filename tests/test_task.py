"""Task, its metrics and what predictions look like per task; scores checked against scipy and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import EvalPrediction

from softprompt import (
    MultiLabelPrediction,
    Prediction,
    RegressionPrediction,
    Task,
    TaskType,
    build_compute_metrics,
    compute_task_metrics,
    decode,
)
from softprompt.metrics.scores import multi_label_scores, regression_scores


def test_task_values_round_trip_and_validation():
    assert Task().type is TaskType.CLASSIFICATION
    assert Task("multi_label_classification").type is TaskType.MULTI_LABEL  # transformers' spelling
    for task in (Task(), Task("regression"), Task("multi-label", threshold=0.3)):
        assert Task.from_dict(task.to_dict()) == task
    assert Task("regression").problem_type == "regression"
    with pytest.raises(ValueError, match="'ner' is not one of"):
        Task("ner")
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        Task("multi-label", threshold=1.0)
    with pytest.raises(TypeError, match="threshold must be a number"):
        Task("multi-label", threshold="0.5")
    with pytest.raises(ValueError, match="unknown task fields"):
        Task.from_dict({"type": "regression", "extra": 1})
    assert Task.from_problem_type(None, 1).type is TaskType.REGRESSION
    assert Task.from_problem_type("multi_label_classification", 4).type is TaskType.MULTI_LABEL
    with pytest.raises(ValueError, match="at least 2 classes"):
        Task().num_labels(["only"])


def test_regression_scores_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    refs = rng.integers(1, 6, size=200).astype(float)  # many ties, as SICK's scores have
    preds = refs + rng.normal(0, 1.0, size=200)
    preds[:10] = preds[0]  # ties in the predictions too
    got = regression_scores(preds[:, None], refs)
    assert got["pearson"] == pytest.approx(stats.pearsonr(preds, refs)[0], abs=1e-12)
    assert got["spearman"] == pytest.approx(stats.spearmanr(preds, refs)[0], abs=1e-12)
    assert got["mse"] == pytest.approx(np.mean((preds - refs) ** 2))
    with pytest.raises(ValueError, match="one value per example"):
        regression_scores(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="NaN or inf"):
        regression_scores([1.0, np.nan], [1.0, 2.0])


def test_multi_label_scores_match_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    refs = rng.integers(0, 2, size=(50, 4))
    preds = rng.integers(0, 2, size=(50, 4))
    preds[:, 3] = 0
    refs[:, 3] = 0  # a class with no members either way
    got = multi_label_scores(preds, refs)
    assert got["f1_micro"] == pytest.approx(metrics.f1_score(refs, preds, average="micro"))
    assert got["f1_macro"] == pytest.approx(metrics.f1_score(refs, preds, average="macro", zero_division=0))
    assert got["exact_match"] == pytest.approx(metrics.accuracy_score(refs, preds))
    with pytest.raises(ValueError, match="must be 0/1"):
        multi_label_scores([[2, 0]], [[1, 0]])


def test_compute_metrics_per_task():
    logits = np.array([[3.0, -2.0, 0.1], [-1.0, 2.0, 4.0]])
    refs = np.array([[1, 0, 1], [0, 1, 1]], dtype=np.float32)
    got = build_compute_metrics(task=Task("multi-label"))(EvalPrediction(predictions=logits, label_ids=refs))
    assert got == {"f1_micro": 1.0, "f1_macro": 1.0, "exact_match": 1.0}
    # a threshold of 0.6 drops the 0.525 probability of logit 0.1
    assert compute_task_metrics(Task("multi-label", threshold=0.6), logits, refs)["exact_match"] == 0.5
    reg = build_compute_metrics(task=Task("regression"))(
        EvalPrediction(predictions=np.array([[1.0], [2.0], [3.0]]), label_ids=np.array([1.0, 2.0, 3.5]))
    )
    assert set(reg) == {"pearson", "spearman", "mse"} and reg["spearman"] == 1.0
    cls = build_compute_metrics(task=Task())(
        EvalPrediction(predictions=np.array([[2.0, 0.0], [0.0, 1.0]]), label_ids=np.array([0, 0]))
    )
    assert cls == {"accuracy": 0.5, "f1": pytest.approx(1 / 3)}


def test_decode_per_task():
    names = {0: "a", 1: "b", 2: "c"}
    (p,) = decode(torch.tensor([[0.0, 2.0, 1.0]]), Task(), names, temperature=2.0)
    assert isinstance(p, Prediction) and p.label_name == "b"
    assert p.confidence == pytest.approx(torch.softmax(torch.tensor([0.0, 1.0, 0.5]), 0)[1].item())
    (m,) = decode(torch.tensor([[2.0, -2.0, 0.0]]), Task("multi-label"), names)
    assert isinstance(m, MultiLabelPrediction)
    assert (m.labels, m.label_names) == ([0, 2], ["a", "c"])  # sigmoid(0) = 0.5 reaches the threshold
    assert m.scores["b"] == pytest.approx(torch.sigmoid(torch.tensor(-2.0)).item())
    (r,) = decode(torch.tensor([[3.25]]), Task("regression"))
    assert r == RegressionPrediction(3.25) and r.to_dict() == {"value": 3.25}
    with pytest.raises(ValueError, match="do not fit a regression head"):
        decode(torch.zeros(1, 2), Task("regression"))
    with pytest.raises(ValueError, match="positive number"):
        decode(torch.zeros(1, 2), Task(), temperature=0.0)
