"""Tests for softprompt.metrics: offline loading, hand-computed values, scikit-learn parity, Trainer hook."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import evaluate
import numpy as np
import pytest
from transformers import EvalPrediction

import softprompt.metrics as sm
from softprompt.metrics import (
    METRIC_NAMES,
    _load_once,
    compute_classification_metrics,
    load_metric,
)
from softprompt.tasks import build_compute_metrics

METRICS_DIR = Path(sm.__file__).resolve().parent

# A hand-worked 3-class example (see test_f1_hand_worked_example for the arithmetic).
PREDS_3 = np.array([0, 0, 1, 1, 2, 2])
REFS_3 = np.array([0, 0, 0, 1, 1, 2])


def _manual_f1(preds: np.ndarray, refs: np.ndarray, average: str = "macro") -> float:
    """Per-class loop reference, independent of the vectorised implementation."""
    classes = sorted(set(preds.tolist()) | set(refs.tolist()))
    f1s, supports = [], []
    for c in classes:
        tp = sum(1 for p, r in zip(preds, refs) if p == c and r == c)
        fp = sum(1 for p, r in zip(preds, refs) if p == c and r != c)
        fn = sum(1 for p, r in zip(preds, refs) if p != c and r == c)
        f1s.append(2 * tp / (2 * tp + fp + fn))
        supports.append(tp + fn)
    if average == "macro":
        return sum(f1s) / len(f1s)
    return sum(f * s for f, s in zip(f1s, supports)) / sum(supports)


@pytest.fixture(scope="module")
def accuracy() -> evaluate.EvaluationModule:
    return load_metric("accuracy")


@pytest.fixture(scope="module")
def f1() -> evaluate.EvaluationModule:
    return load_metric("f1")


@pytest.fixture(scope="module")
def compute_metrics():
    return build_compute_metrics()


# --- loading -------------------------------------------------------------------------------------


def test_load_metric_makes_no_network_call(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network call to {args[1:]}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    _load_once.cache_clear()  # really load, even if another test did
    for name in METRIC_NAMES:
        module = load_metric(name)
        assert isinstance(module, evaluate.EvaluationModule)
        assert module.name == name
        # class ids, or (seqeval) one list of tag names per sentence
        dtype = "string" if name == "seqeval" else "int64"
        for column in ("predictions", "references"):
            feature = module.features[column]
            assert getattr(feature, "feature", feature).dtype == dtype


def test_each_metric_is_loaded_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = evaluate.load
    monkeypatch.setattr(evaluate, "load", lambda *a, **k: calls.append(a) or real(*a, **k))
    _load_once.cache_clear()
    first = load_metric("f1")
    assert load_metric("f1") is first and load_metric("accuracy") is load_metric("accuracy")
    assert len(calls) == 2  # one per metric, not one per call


def test_evaluate_load_accepts_the_metric_folder() -> None:
    # evaluate.load(<folder>) finds <folder>/<folder name>.py
    module = evaluate.load(str(METRICS_DIR / "f1"), keep_in_memory=True)
    assert module.compute(predictions=[0, 1], references=[0, 1]) == {"f1": 1.0}


@pytest.mark.slow  # a fresh interpreter pays `import evaluate` (which imports transformers): 3-10 s
def test_metric_scripts_load_offline_with_an_empty_cache(tmp_path: Path) -> None:
    """A fresh process with an empty HF_HOME, offline, and sockets disabled."""
    script = textwrap.dedent(
        f"""
        import socket
        def no_network(*args, **kwargs):
            raise RuntimeError("network call")
        socket.socket.connect = no_network
        import evaluate
        acc = evaluate.load({str(METRICS_DIR / "accuracy" / "accuracy.py")!r})
        f1 = evaluate.load({str(METRICS_DIR / "f1")!r})
        print(acc.compute(predictions=[0, 1, 1], references=[0, 1, 0])["accuracy"],
              f1.compute(predictions=[0, 1, 1], references=[0, 1, 0])["f1"])
        """
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("HF_MODULES_CACHE", None)
    env.pop("HF_EVALUATE_CACHE", None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    acc, f1 = map(float, done.stdout.split())
    assert acc == pytest.approx(2 / 3)
    assert f1 == pytest.approx((2 / 3 + 2 / 3) / 2)


def test_load_metric_unknown_name_lists_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown metric 'precision'.*'accuracy', 'f1'"):
        load_metric("precision")


# --- accuracy ------------------------------------------------------------------------------------


def test_accuracy_matches_numpy(accuracy: evaluate.EvaluationModule) -> None:
    rng = np.random.default_rng(0)
    preds, refs = rng.integers(0, 3, 50), rng.integers(0, 3, 50)
    result = accuracy.compute(predictions=preds, references=refs)
    assert result == {"accuracy": pytest.approx(float(np.mean(preds == refs)))}
    assert isinstance(result["accuracy"], float)


def test_accuracy_count_and_weights(accuracy: evaluate.EvaluationModule) -> None:
    preds, refs = [0, 1, 1, 0], [0, 1, 0, 0]
    assert accuracy.compute(predictions=preds, references=refs) == {"accuracy": 0.75}
    assert accuracy.compute(predictions=preds, references=refs, normalize=False) == {"accuracy": 3.0}
    # weights: correct rows weigh 1 + 2 + 4 = 7 of 1 + 2 + 3 + 4 = 10
    weighted = accuracy.compute(predictions=preds, references=refs, sample_weight=[1, 2, 3, 4])
    assert weighted == {"accuracy": pytest.approx(0.7)}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sample_weight": [1.0, 2.0]}, "2 sample weights for 4 predictions"),
        ({"sample_weight": [1.0, -1.0, 1.0, 1.0]}, "negative sample weight -1.0"),
        ({"sample_weight": [0, 0, 0, 0]}, "sum to 0"),
    ],
)
def test_accuracy_bad_weights(accuracy: evaluate.EvaluationModule, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        accuracy.compute(predictions=[0, 1, 1, 0], references=[0, 1, 0, 0], **kwargs)


def test_metrics_reject_empty_input(
    accuracy: evaluate.EvaluationModule, f1: evaluate.EvaluationModule
) -> None:
    for module in (accuracy, f1):
        with pytest.raises(ValueError):
            module.compute(predictions=[], references=[])


def test_metrics_reject_mismatched_lengths(f1: evaluate.EvaluationModule) -> None:
    with pytest.raises(ValueError):
        f1.compute(predictions=[0, 1, 1], references=[0, 1])


# --- f1 ------------------------------------------------------------------------------------------


def test_f1_hand_worked_example(f1: evaluate.EvaluationModule) -> None:
    # preds [0 0 1 1 2 2] vs refs [0 0 0 1 1 2]:
    #   class 0: TP 2, FP 0, FN 1 -> F1 = 4/5;  support 3
    #   class 1: TP 1, FP 1, FN 1 -> F1 = 2/4;  support 2
    #   class 2: TP 1, FP 1, FN 0 -> F1 = 2/3;  support 1
    macro = (Fraction(4, 5) + Fraction(1, 2) + Fraction(2, 3)) / 3  # = 59/90
    weighted = (Fraction(4, 5) * 3 + Fraction(1, 2) * 2 + Fraction(2, 3) * 1) / 6  # = 61/90
    micro = Fraction(4, 6)  # pooled: 2*4 / (2*4 + 2 + 2) = accuracy
    assert macro == Fraction(59, 90) and weighted == Fraction(61, 90)
    assert f1.compute(predictions=PREDS_3, references=REFS_3)["f1"] == pytest.approx(float(macro))  # default
    for average, expected in (("macro", macro), ("weighted", weighted), ("micro", micro)):
        got = f1.compute(predictions=PREDS_3, references=REFS_3, average=average)["f1"]
        assert got == pytest.approx(float(expected)), average


def test_f1_binary_hand_worked(f1: evaluate.EvaluationModule) -> None:
    preds, refs = [1, 1, 0, 1, 0], [0, 1, 1, 1, 0]
    # pos 1: TP 2, FP 1, FN 1 -> 4/6; pos 0: TP 1, FP 1, FN 1 -> 2/4
    assert f1.compute(predictions=preds, references=refs, average="binary")["f1"] == pytest.approx(2 / 3)
    assert f1.compute(predictions=preds, references=refs, average="binary", pos_label=0)["f1"] == 0.5


def test_f1_counts_classes_seen_only_in_predictions(f1: evaluate.EvaluationModule) -> None:
    # class 1 is predicted but never true: its F1 is 0 and it counts in the macro mean
    assert f1.compute(predictions=[0, 1], references=[0, 0])["f1"] == pytest.approx((2 / 3 + 0) / 2)


def test_f1_matches_manual_loop(f1: evaluate.EvaluationModule) -> None:
    rng = np.random.default_rng(1)
    preds, refs = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    for average in ("macro", "weighted"):
        got = f1.compute(predictions=preds, references=refs, average=average)["f1"]
        assert got == pytest.approx(_manual_f1(preds, refs, average)), average


def test_f1_matches_scikit_learn(f1: evaluate.EvaluationModule) -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(2)
    for num_classes in (2, 3, 5):
        preds, refs = rng.integers(0, num_classes, 97), rng.integers(0, num_classes, 97)
        for average in ("macro", "micro", "weighted"):
            expected = sklearn_metrics.f1_score(refs, preds, average=average)
            got = f1.compute(predictions=preds, references=refs, average=average)["f1"]
            assert got == pytest.approx(expected), (num_classes, average)
    preds, refs = rng.integers(0, 2, 40), rng.integers(0, 2, 40)
    for pos_label in (0, 1):
        expected = sklearn_metrics.f1_score(refs, preds, average="binary", pos_label=pos_label)
        got = f1.compute(predictions=preds, references=refs, average="binary", pos_label=pos_label)["f1"]
        assert got == pytest.approx(expected)


def test_f1_binary_positive_class_absent_is_zero(f1: evaluate.EvaluationModule) -> None:
    assert f1.compute(predictions=[0, 0], references=[0, 0], average="binary") == {"f1": 0.0}


@pytest.mark.parametrize(
    ("preds", "refs", "kwargs", "message"),
    [
        ([0, 1], [0, 1], {"average": "samples"}, r"average='samples'; choose one of 'binary', 'macro'"),
        ([0, 1, 2], [0, 1, 2], {"average": "binary"}, r"at most 2 classes but found \[0, 1, 2\]"),
        ([0, 1], [0, 1], {"average": "binary", "pos_label": 5}, r"pos_label=5.*classes \[0, 1\]"),
    ],
)
def test_f1_errors(
    f1: evaluate.EvaluationModule, preds: list, refs: list, kwargs: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        f1.compute(predictions=preds, references=refs, **kwargs)


# --- build_compute_metrics / compute_classification_metrics ---------------------------------------


def test_compute_metrics_argmaxes_logits(compute_metrics) -> None:
    logits = np.array([[2.0, 0.1], [0.3, 0.9], [0.2, 0.8], [1.0, 0.0]], dtype=np.float32)
    labels = np.array([0, 1, 0, 0])
    result = compute_metrics(EvalPrediction(predictions=logits, label_ids=labels))
    preds = logits.argmax(-1)
    assert list(result) == ["accuracy", "f1"]
    assert result["accuracy"] == pytest.approx(float(np.mean(preds == labels)))
    assert result["f1"] == pytest.approx(_manual_f1(preds, labels))
    assert all(type(v) is float for v in result.values())


def test_compute_metrics_tuple_predictions_and_labels(compute_metrics) -> None:
    logits = np.eye(3)[PREDS_3] + 0.1
    hidden = np.zeros((6, 4, 8))  # e.g. hidden states returned next to the logits
    result = compute_metrics(EvalPrediction(predictions=(logits, hidden), label_ids=(REFS_3,)))
    assert result == {"accuracy": pytest.approx(4 / 6), "f1": pytest.approx(59 / 90)}


def test_compute_metrics_accepts_class_ids(compute_metrics) -> None:
    # what preprocess_logits_for_metrics=lambda logits, labels: logits.argmax(-1) hands over
    result = compute_metrics(EvalPrediction(predictions=PREDS_3, label_ids=REFS_3))
    assert result == {"accuracy": pytest.approx(4 / 6), "f1": pytest.approx(59 / 90)}


def test_compute_metrics_token_level_ignores_minus_100(compute_metrics) -> None:
    # (N=2, T=4, C=3) logits; -100 marks [CLS], [SEP], sub-words and the padding Trainer adds
    pred_ids = np.array([[1, 0, 2, 1], [2, 2, 0, 0]])
    labels = np.array([[-100, 0, 2, -100], [-100, 1, 0, -100]])
    logits = np.eye(3)[pred_ids]
    result = compute_metrics(EvalPrediction(predictions=logits, label_ids=labels))
    kept_preds, kept_refs = np.array([0, 2, 2, 0]), np.array([0, 2, 1, 0])
    assert result["accuracy"] == pytest.approx(3 / 4)
    assert result["f1"] == pytest.approx(_manual_f1(kept_preds, kept_refs))
    # class 0: 2TP -> 1; class 1: FN -> 0; class 2: TP 1, FP 1 -> 2/3
    assert result["f1"] == pytest.approx((1 + 0 + 2 / 3) / 3)


@pytest.mark.parametrize(
    ("predictions", "label_ids", "message"),
    [
        (np.zeros((4, 2)), np.array([0, 1, -100, 0]), r"1 of 4 sequence-level references are -100"),
        (
            np.zeros((4, 2, 3, 5)),
            np.array([0, 1, 1, 0]),
            r"shape \(4, 2, 3, 5\) do not match references of shape \(4,\)",
        ),
        (np.zeros((3, 2)), np.array([0, 1, 1, 0]), r"shape \(3,\) \(after argmax\) do not match"),
        (np.array([0.0, 1.0, 1.0, 0.0]), np.array([0, 1, 1, 0]), r"dtype float64; pass integer class ids"),
        (np.zeros((4, 2)), np.array([0.0, 1.0, 1.0, 0.0]), r"references must be integer class ids"),
        (np.zeros((4, 2)), (np.array([0, 1, 1, 0]), np.array([1, 1, 1, 1])), r"got 2 label arrays"),
        (np.zeros((1, 2, 3)), np.array([[-100, -100]]), r"no labelled examples"),
        (np.zeros((1, 2, 3, 4)), np.zeros((1, 2, 3), dtype=int), r"shape \(N,\) or \(N, T\)"),
    ],
)
def test_compute_metrics_rejects_bad_inputs(compute_metrics, predictions, label_ids, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compute_metrics(EvalPrediction(predictions=predictions, label_ids=label_ids))


def test_build_compute_metrics_choices() -> None:
    only_f1 = build_compute_metrics("f1")  # one string is one name
    assert only_f1(EvalPrediction(predictions=PREDS_3, label_ids=REFS_3)) == {"f1": pytest.approx(59 / 90)}
    twice = build_compute_metrics(["f1", "accuracy", "f1"])
    assert list(twice(EvalPrediction(predictions=PREDS_3, label_ids=REFS_3))) == ["f1", "accuracy"]
    with pytest.raises(ValueError, match=r"unknown metric 'recall'"):
        build_compute_metrics(["accuracy", "recall"])  # fails at build time, before training
    with pytest.raises(ValueError, match="metrics is empty"):
        build_compute_metrics([])


def test_compute_classification_metrics_matches_numpy_and_trainer_hook(compute_metrics) -> None:
    rng = np.random.default_rng(3)
    preds, refs = rng.integers(0, 3, 60), rng.integers(0, 3, 60)
    result = compute_classification_metrics(preds, refs)
    assert result == {
        "accuracy": pytest.approx(float(np.mean(preds == refs))),
        "f1": pytest.approx(_manual_f1(preds, refs)),
    }
    assert result == compute_metrics(EvalPrediction(predictions=preds, label_ids=refs))
    assert compute_classification_metrics(preds, refs, metrics=["accuracy"]) == {
        "accuracy": result["accuracy"]
    }
