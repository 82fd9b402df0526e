"""A caller's own metrics: evaluate names, local metric scripts, modules, mappings and callables."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from sklearn.metrics import f1_score
from transformers import EvalPrediction

from softprompt import SoftPromptConfig, SoftPromptWrapper, Task, tokenize_dataset, train_prompt
from softprompt.finetune import finetune
from softprompt.metrics import load_metric
from softprompt.tasks.scoring import default_best_metric, resolve_compute_metrics
from tests.test_tasks import _data, _model

# a user's own evaluate metric, kept in a local folder: mean absolute error of one value per row
MAE_SCRIPT = textwrap.dedent(
    """
    import datasets
    import evaluate
    import numpy as np


    class Mae(evaluate.Metric):
        def _info(self):
            return evaluate.MetricInfo(
                description="mean absolute error", citation="", inputs_description="",
                features=datasets.Features({"predictions": datasets.Value("float64"),
                                            "references": datasets.Value("float64")}),
            )

        def _compute(self, predictions, references):
            return {"mae": float(np.mean(np.abs(np.asarray(predictions) - np.asarray(references))))}
    """
)


@pytest.fixture
def mae_path(tmp_path):
    folder = tmp_path / "mae"
    folder.mkdir()
    (folder / "mae.py").write_text(MAE_SCRIPT)
    return str(folder / "mae.py")


LOGITS = np.array([[2.0, 0.1, 0.0], [0.3, 0.9, 0.1], [0.2, 0.8, 1.5], [1.0, 0.0, 0.2], [0.0, 0.1, 0.4]])
LABELS = np.array([0, 1, 1, 0, 1])
IDS = LOGITS.argmax(-1)


def test_a_shipped_name_scores_class_ids():
    fn = resolve_compute_metrics(["accuracy", "f1"], Task("classification"), None)
    got = fn(EvalPrediction(predictions=LOGITS, label_ids=LABELS))
    assert got["accuracy"] == pytest.approx(float(np.mean(IDS == LABELS)))
    assert got["f1"] == pytest.approx(f1_score(LABELS, IDS, average="macro"))


def test_a_mapping_passes_compute_arguments():
    fn = resolve_compute_metrics({"f1": {"average": "micro"}}, Task("classification"), None)
    got = fn(EvalPrediction(predictions=LOGITS, label_ids=LABELS))
    assert got == {"f1": pytest.approx(f1_score(LABELS, IDS, average="micro"))}


def test_a_local_metric_script_scores_regression_outputs(mae_path):
    preds = np.array([[0.5], [2.0], [3.5]])  # (N, 1): a regression head
    refs = np.array([1.0, 2.0, 3.0])
    fn = resolve_compute_metrics(mae_path, Task("regression"), None)
    assert fn(EvalPrediction(predictions=preds, label_ids=refs)) == {"mae": pytest.approx(1 / 3)}
    assert default_best_metric(mae_path) == "mae"  # the script's own name, not its path


def test_a_module_is_used_as_it_is_and_a_callable_is_untouched():
    module = load_metric("accuracy")
    fn = resolve_compute_metrics(module, Task("classification"), None)
    assert fn(EvalPrediction(predictions=LOGITS, label_ids=LABELS)) == {"accuracy": 0.6}

    def mine(eval_pred):
        return {"n": len(eval_pred.label_ids)}

    assert resolve_compute_metrics(mine, Task("classification"), None) is mine
    assert default_best_metric(mine) is None and default_best_metric(None) is None
    assert default_best_metric(["f1", "accuracy"]) == "f1"


def test_multi_label_outputs_become_decisions(tmp_path):
    # a metric taking 0/1 rows, as evaluate's multi-label configurations do
    script = MAE_SCRIPT.replace("Mae", "Rows").replace(
        'datasets.Value("float64")', 'datasets.Sequence(datasets.Value("int64"))'
    )
    script = script.replace(
        '{"mae": float(np.mean(np.abs(np.asarray(predictions) - np.asarray(references))))}',
        '{"exact": float(np.mean(np.all(np.asarray(predictions) == np.asarray(references), axis=1)))}',
    )
    (tmp_path / "rows.py").write_text(script)
    logits = np.array([[1.0, -1.0, 0.5], [-2.0, 3.0, -0.1]])  # (N, C): sigmoid > 0.5 <=> logit > 0
    refs = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    fn = resolve_compute_metrics(str(tmp_path / "rows.py"), Task("multi-label"), None)
    assert fn(EvalPrediction(predictions=logits, label_ids=refs)) == {"exact": 0.5}
    flat = resolve_compute_metrics("accuracy", Task("multi-label"), None)  # takes class ids, not rows
    with pytest.raises(ValueError, match="cannot score a multi-label head's outputs"):
        flat(EvalPrediction(predictions=logits, label_ids=refs))


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("no_such_metric_anywhere", ValueError, "offline, give the path"),
        ([], ValueError, "empty list"),
        (42, TypeError, "compute_metrics must be"),
        ({"f1": "macro"}, TypeError, "dict of compute"),
        ([""], TypeError, "metric name"),
    ],
)
def test_bad_metrics_fail_at_once(spec, error, match):
    with pytest.raises(error, match=match):
        resolve_compute_metrics(spec, Task("classification"), None)


def test_names_are_refused_for_token_tasks():
    with pytest.raises(ValueError, match="per token"):
        resolve_compute_metrics("accuracy", Task("token-classification"), {0: "O", 1: "B-PER"})


def test_training_scores_with_named_metrics_and_keeps_the_best_by_the_first(tokenizer, tmp_path):
    data = _data("classification", pair=False)
    train = tokenize_dataset(data.train, tokenizer, max_length=32)
    wrapper = SoftPromptWrapper(_model(data, 0), SoftPromptConfig(num_virtual_tokens=2), tokenizer=tokenizer)
    result = train_prompt(
        wrapper, train, train, output_dir=tmp_path / "pt", num_train_epochs=1, disable_tqdm=True,
        compute_metrics=["f1", "accuracy"],
    )  # fmt: skip
    assert {"eval_f1", "eval_accuracy"} <= set(result.eval_metrics)
    args = json.loads((tmp_path / "pt" / "training_args.json").read_text())
    assert args["metric_for_best_model"] == "f1"

    out = finetune(_model(data, 0), tokenizer, train, train, output_dir=tmp_path / "ft", num_train_epochs=1,
                   disable_tqdm=True, compute_metrics={"f1": {"average": "micro"}})  # fmt: skip
    assert "eval_f1" in out.eval_metrics
