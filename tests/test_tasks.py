"""Every sequence task x {single text, text pair}, end to end on tiny models: data -> train -> file -> reload.

Each case loads its data with ``load_data`` (task inferred from the labels), trains a prompt a few
steps with ``train_prompt`` and the same data with ``finetune`` (one pipeline), checks the loss is
the task's loss on the returned logits, and reloads the prompt file on a model with another head
initialisation: same predictions and metrics, bit for bit.
"""

from __future__ import annotations

import random

import datasets
import pandas as pd
import pytest
import torch
import transformers

from softprompt import (
    MultiLabelPrediction,
    Prediction,
    RegressionPrediction,
    SoftPromptConfig,
    SoftPromptWrapper,
    evaluate_model,
    load_data,
    predict,
    tokenize_dataset,
    train_prompt,
)
from softprompt.finetune import finetune
from tests.conftest import WORDS, after_cls_reference, bare_arithmetic, model_config

TASKS = ["classification", "multi-label", "regression"]
CLASSES = ["sport", "film", "food"]


def _rows(n: int, task: str, pair: bool, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8)))
        row = {"sentence": text}
        if pair:
            row["other"] = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5)))
        if task == "classification":
            row["y"] = rng.choice(CLASSES)  # class names: mapped to ids, kept in id2label
        elif task == "multi-label":
            row["y"] = sorted(rng.sample(CLASSES, rng.randint(0, 3)))  # lists of class names
        else:
            row["y"] = round(rng.uniform(1, 5), 2)  # float scores
        rows.append(row)
    return pd.DataFrame(rows)


def _data(task: str, pair: bool):
    splits = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_pandas(_rows(24, task, pair, 0)),
            "test": datasets.Dataset.from_pandas(_rows(12, task, pair, 1)),
        }
    )
    return load_data(
        splits, text_column="sentence", text_pair_column="other" if pair else None, label_column="y"
    )


def _model(data, seed: int) -> transformers.PreTrainedModel:
    torch.manual_seed(seed)
    config = model_config("bert", data.num_labels)
    for key, value in data.model_kwargs().items():
        setattr(config, key, value)
    return transformers.AutoModelForSequenceClassification.from_config(config).eval()


def _inputs(dataset) -> list:
    if "text_pair" in dataset.column_names:
        return list(zip(dataset["text"], dataset["text_pair"]))
    return list(dataset["text"])


@pytest.mark.parametrize("pair", [False, True], ids=["single", "pair"])
@pytest.mark.parametrize("task", TASKS)
def test_task_trains_saves_and_reloads_exactly(task, pair, tokenizer, tmp_path):
    data = _data(task, pair)
    assert data.task.type.value == task and data.is_pair == pair  # inferred from the label column
    if task != "regression":
        assert data.label_names == sorted(CLASSES)
    wrapper = SoftPromptWrapper(_model(data, 0), SoftPromptConfig(num_virtual_tokens=4), tokenizer=tokenizer)
    assert wrapper.task == data.task and wrapper.config.problem_type == data.task.problem_type
    train = tokenize_dataset(data.train, tokenizer, max_length=48, num_virtual_tokens=4)
    test = tokenize_dataset(data.eval, tokenizer, max_length=48, num_virtual_tokens=4)
    if pair:
        assert any(1 in row for row in train["token_type_ids"])  # tokenized as pairs

    # the loss is the task's loss on the logits the wrapper returns
    batch = wrapper.tokenizer.pad(
        [{k: train[i][k] for k in ("input_ids", "token_type_ids", "attention_mask")} for i in range(4)],
        return_tensors="pt",
    )
    labels = torch.tensor(train["labels"][:4])
    out = wrapper(**batch, labels=labels)
    expected = {
        "classification": lambda: torch.nn.functional.cross_entropy(out.logits, labels),
        "multi-label": lambda: torch.nn.functional.binary_cross_entropy_with_logits(out.logits, labels),
        "regression": lambda: torch.nn.functional.mse_loss(out.logits.squeeze(-1), labels),
    }[task]()
    assert torch.allclose(out.loss, expected)

    result = train_prompt(
        wrapper, train, test, output_dir=tmp_path / "pt", num_train_epochs=2, learning_rate=0.05,
        per_device_train_batch_size=8, disable_tqdm=True, logging_strategy="epoch",
    )  # fmt: skip
    best = f"eval_{data.task.best_metric}"
    assert best in result.eval_metrics
    assert result.log_history[0]["loss"] > 0

    items = _inputs(data.eval)
    before = wrapper.predict(items)
    kind = {
        "classification": Prediction,
        "multi-label": MultiLabelPrediction,
        "regression": RegressionPrediction,
    }
    assert all(isinstance(p, kind[task]) for p in before) and len(before) == len(items)
    scores = evaluate_model(wrapper, tokenizer, data.eval, max_length=48)
    assert scores[best] == pytest.approx(result.eval_metrics[best], abs=1e-6)

    # a new model object whose own head was initialised differently: the file brings its head and task
    fresh = _model(data, 0)  # the same backbone weights...
    torch.nn.init.normal_(fresh.classifier.weight)  # ...with another head
    reloaded = SoftPromptWrapper.from_prompt(fresh, result.prompt_path, tokenizer=tokenizer)
    assert reloaded.task == data.task and reloaded.id2label == wrapper.id2label
    assert reloaded.predict(items) == before
    assert evaluate_model(reloaded, tokenizer, data.eval, max_length=48) | {
        "eval_runtime": 0,
        "eval_samples_per_second": 0,
    } == scores | {"eval_runtime": 0, "eval_samples_per_second": 0}


@pytest.mark.parametrize("task", TASKS)
def test_finetune_shares_the_pipeline(task, tokenizer, tmp_path):
    data = _data(task, pair=True)
    model = _model(data, 0)
    train = tokenize_dataset(data.train, tokenizer, max_length=48)
    test = tokenize_dataset(data.eval, tokenizer, max_length=48)
    result = finetune(
        model, tokenizer, train, test, output_dir=tmp_path / "ft", num_train_epochs=1, per_device_train_batch_size=8,
        learning_rate=1e-3, disable_tqdm=True,
    )  # fmt: skip
    assert f"eval_{data.task.best_metric}" in result.eval_metrics
    preds = predict(model, tokenizer, _inputs(data.eval))
    assert len(preds) == len(data.eval)
    # Trainer's evaluation is the bare arithmetic; with the levers a near-constant regressor's Pearson r
    # moves in the 5th digit (float rounding, amplified), so compare the pipeline on the bare arithmetic
    metrics = evaluate_model(bare_arithmetic(model), tokenizer, data.eval, max_length=48)
    assert metrics[f"eval_{data.task.best_metric}"] == pytest.approx(
        result.eval_metrics[f"eval_{data.task.best_metric}"], abs=1e-6
    )


def test_train_prompt_accepts_compute_metrics_collator_and_callbacks(tokenizer, tmp_path):
    data = _data("regression", pair=False)
    wrapper = SoftPromptWrapper(_model(data, 0), SoftPromptConfig(num_virtual_tokens=4), tokenizer=tokenizer)
    train = tokenize_dataset(data.train, tokenizer, max_length=48, num_virtual_tokens=4)
    seen = {"collator": 0, "metrics": 0, "epochs": 0}
    padding = transformers.DataCollatorWithPadding(tokenizer)

    def collator(features):
        seen["collator"] += 1
        return padding(features)

    def compute_metrics(eval_pred):
        seen["metrics"] += 1
        return {"neg_mae": -float(abs(eval_pred.predictions.squeeze(-1) - eval_pred.label_ids).mean())}

    class Count(transformers.TrainerCallback):
        def on_epoch_end(self, args, state, control, **kwargs):
            seen["epochs"] += 1

    train_prompt(
        wrapper, train, train, output_dir=tmp_path / "pt", num_train_epochs=2, compute_metrics=compute_metrics,
        data_collator=collator, callbacks=[Count()], metric_for_best_model="neg_mae", disable_tqdm=True,
        warmup_steps=1, lr_scheduler_type="constant_with_warmup",
    )  # fmt: skip
    assert seen["collator"] > 0 and seen["metrics"] >= 2 and seen["epochs"] == 2


def test_pair_prompt_goes_after_cls_before_the_first_segment(tokenizer):
    data = _data("classification", pair=True)
    model = _model(data, 0)
    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=3), tokenizer=tokenizer)
    bare_arithmetic(wrapper)  # compared bit for bit below
    batch = wrapper.tokenize(["great film", "dull"], ["very good", "bad plot ever"])
    got = wrapper(**batch).logits
    ref = after_cls_reference(model, wrapper.prompts["default"].prompt, batch).logits  # [CLS] p1 p2 p3 tokens
    assert torch.equal(got, ref)
    with pytest.raises(TypeError, match="mixes single texts and"):
        wrapper.predict(["a", ("b", "c")])


@pytest.mark.parametrize("task", TASKS)
def test_logits_and_loss_equal_the_bare_models(task, tokenizer):
    """With the prompt spliced in by hand, the bare model gives the wrapper's logits and loss, per task."""
    data = _data(task, pair=True)
    model = _model(data, 0)
    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=3), tokenizer=tokenizer)
    batch = wrapper.tokenize(["great film", "dull"], ["very good", "bad plot ever"])
    labels = torch.tensor(data.train["label"][:2])
    fast = wrapper(**batch, labels=labels)  # the default speed levers: float rounding apart, the same
    got = bare_arithmetic(wrapper)(**batch, labels=labels)
    ref = after_cls_reference(model, wrapper.prompts["default"].prompt, batch, labels)
    assert model.config.problem_type == data.task.problem_type
    assert torch.equal(got.logits, ref.logits) and torch.equal(got.loss, ref.loss)
    torch.testing.assert_close(fast.logits, ref.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(fast.loss, ref.loss, atol=1e-5, rtol=0)
