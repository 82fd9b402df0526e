"""``fit_regression_head`` and ``head_init="fit"``: a new regression head starts at the ridge fit to its inputs."""

from __future__ import annotations

import dataclasses
import json

import datasets
import numpy as np
import pandas as pd
import pytest
import torch
import transformers

from softprompt import (
    RunConfig,
    SoftPromptConfig,
    SoftPromptWrapper,
    fit_regression_head,
    read_prompt_file,
    tokenize_dataset,
)
from softprompt.data import load_data
from softprompt.runs.loading import load_run
from softprompt.runs.recipes import run_finetune, run_prompt_tuning
from tests.conftest import WORDS, make_model, model_config

MAX_LENGTH = 32
N = 4


def _frame(n: int, seed: int) -> pd.DataFrame:
    """Texts whose score (1..5) is the share of words from the first half of the vocabulary list."""
    gen = np.random.default_rng(seed)
    texts, scores = [], []
    for _ in range(n):
        ids = gen.integers(0, len(WORDS), size=int(gen.integers(3, 10)))
        texts.append(" ".join(WORDS[i] for i in ids))
        scores.append(1 + 4 * float(np.mean(ids < len(WORDS) // 2)))
    return pd.DataFrame({"text": texts, "score": scores})


def _regression(tokenizer, *, deep: bool = False, seed: int = 0):
    splits = datasets.DatasetDict({"train": datasets.Dataset.from_pandas(_frame(40, 0)),
                                   "test": datasets.Dataset.from_pandas(_frame(12, 1))})  # fmt: skip
    data = load_data(splits, label_column="score")
    torch.manual_seed(seed)
    config = model_config("bert", 1, num_layers=3)
    for key, value in data.model_kwargs().items():
        setattr(config, key, value)
    model = transformers.AutoModelForSequenceClassification.from_config(config).eval()
    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=N, deep=deep), tokenizer=tokenizer)
    train = tokenize_dataset(data.train, tokenizer, max_length=MAX_LENGTH, num_virtual_tokens=N)
    return wrapper, train


def _padded(wrapper, rows) -> dict[str, torch.Tensor]:
    keys = ("input_ids", "token_type_ids", "attention_mask")
    return wrapper.tokenizer.pad(
        [{k: rows[i][k] for k in keys} for i in range(len(rows))], return_tensors="pt"
    )


@pytest.mark.parametrize("deep", [False, True], ids=["input-only", "deep"])
def test_fit_is_the_ridge_solution_on_what_the_head_receives(deep, tokenizer):
    wrapper, train = _regression(tokenizer, deep=deep)
    batch = _padded(wrapper, train)
    labels = torch.tensor(train["labels"], dtype=torch.float64)  # (n,)
    with torch.no_grad():  # the head's input by another route: the model's own pooler over the [CLS] state
        hidden = wrapper(**batch, output_hidden_states=True).hidden_states[-1]  # (n, N + T, H)
        x = wrapper.model.bert.pooler(hidden).double().numpy()  # (n, H)
    ridge = 0.5
    xc, yc = x - x.mean(0), (labels - labels.mean()).numpy()
    w = np.linalg.solve(xc.T @ xc + ridge * np.eye(x.shape[1]), xc.T @ yc)  # (H,)
    b = labels.mean().item() - x.mean(0) @ w

    report = fit_regression_head(wrapper, train, ridge=ridge, batch_size=7)  # several batches, length-sorted

    head = wrapper.slot().heads["classifier"]
    assert report.layer == "classifier" and report.rows == len(train)
    np.testing.assert_allclose(head.weight.detach().double().numpy()[0], w, rtol=1e-4, atol=1e-5)
    assert head.bias.item() == pytest.approx(b, abs=1e-4)
    with torch.no_grad():  # the forward uses the fitted layer: its error is the fit's
        predicted = wrapper(**batch).logits.squeeze(-1).double()  # (n,)
    assert float((predicted - labels).pow(2).mean()) == pytest.approx(report.mse_after, rel=1e-4)
    assert report.mse_after < report.mse_before
    assert not wrapper.model.classifier.weight.equal(head.weight)  # the slot's copy, not the model's head


def test_fit_samples_at_most_max_rows_and_leaves_training_mode(tokenizer):
    wrapper, train = _regression(tokenizer)
    wrapper.train()
    assert fit_regression_head(wrapper, train, max_rows=16, seed=3).rows == 16
    assert wrapper.training


def test_fit_refuses_other_tasks_and_bad_input(tokenizer):
    wrapper = SoftPromptWrapper(
        make_model("bert", "seq"), SoftPromptConfig(num_virtual_tokens=N), tokenizer=tokenizer
    )
    rows = tokenize_dataset(
        load_data(pd.DataFrame({"text": ["a", "b", "c", "d"], "label": [0, 1, 0, 1]}), eval_split=None).train,
        tokenizer,
        max_length=MAX_LENGTH,
        num_virtual_tokens=N,
    )
    with pytest.raises(ValueError, match="regression only"):
        fit_regression_head(wrapper, rows)
    wrapper, train = _regression(tokenizer)
    with pytest.raises(ValueError, match="ridge must be positive"):
        fit_regression_head(wrapper, train, ridge=0.0)
    with pytest.raises(ValueError, match="no 'labels' column"):
        fit_regression_head(wrapper, train.remove_columns("labels"))
    with pytest.raises(ValueError, match="no rows"):
        fit_regression_head(wrapper, train.select([]))
    head = wrapper.slot().heads["classifier"]
    before = head.weight.detach().clone()
    broken = train.map(
        lambda row, i: {"labels": float("nan") if i == 3 else row["labels"]}, with_indices=True
    )
    with pytest.raises(ValueError, match="labels are not all finite; the head was left as it was"):
        fit_regression_head(wrapper, broken)
    assert torch.equal(head.weight, before)


def _folders(tmp_path, tokenizer):
    bare = tmp_path / "bare"  # an encoder without a head, like MiniLM
    base = make_model("bert", "seq", num_labels=1)
    base.base_model.save_pretrained(bare)
    tokenizer.save_pretrained(bare)
    trained = tmp_path / "trained"  # a checkpoint with a regression head of its own
    base.config.problem_type = "regression"
    base.save_pretrained(trained)
    tokenizer.save_pretrained(trained)
    data = tmp_path / "data"
    data.mkdir()
    for split, frame in (("train", _frame(24, 0)), ("test", _frame(8, 1))):
        frame.to_parquet(data / f"{split}.parquet")
    return bare, trained, data


def test_auto_fits_only_a_new_regression_head(tmp_path, tokenizer):
    bare, trained, data = _folders(tmp_path, tokenizer)
    common = dict(data=str(data), label_column="score", max_length=MAX_LENGTH, num_virtual_tokens=N, epochs=1)
    assert RunConfig(model=str(bare), **common).head_init == "auto"  # the default
    assert load_run(RunConfig(model=str(bare), deep=True, **common)).fit_head
    assert not load_run(RunConfig(model=str(bare), **common)).fit_head  # an input-only prompt: as loaded
    assert not load_run(RunConfig(model=str(trained), deep=True, **common)).fit_head  # a trained head is kept
    assert not load_run(RunConfig(model=str(bare), deep=True, head_init="model", **common)).fit_head
    labels = tmp_path / "labels"
    labels.mkdir()
    for split in ("train", "test"):
        pd.DataFrame({"text": ["a b", "c d"], "label": [0, 1]}).to_parquet(labels / f"{split}.parquet")
    assert not load_run(RunConfig(model=str(bare), data=str(labels), deep=True)).fit_head  # classification
    # the default deep run of a new regression head records the fit; fine-tuning never fits
    results = run_prompt_tuning(
        RunConfig(model=str(bare), deep=True, output_dir=str(tmp_path / "pt"), **common)
    )
    assert results["head_fit"]["layer"] == "classifier"
    assert "head_fit" not in run_prompt_tuning(
        RunConfig(model=str(bare), output_dir=str(tmp_path / "pt1"), **common)
    )
    results = run_finetune(RunConfig(model=str(bare), output_dir=str(tmp_path / "ft"), **common))
    assert "head_fit" not in results


def test_run_with_head_init_fit(tmp_path, tokenizer):
    bare, trained, data = _folders(tmp_path, tokenizer)
    common = dict(data=str(data), label_column="score", max_length=MAX_LENGTH, num_virtual_tokens=N, epochs=1)
    cfg = RunConfig(model=str(bare), head_init="fit", output_dir=str(tmp_path / "run"), **common)
    results = run_prompt_tuning(cfg)
    assert (
        results["head_fit"]["rows"] == 24
        and results["head_fit"]["mse_after"] < results["head_fit"]["mse_before"]
    )
    assert json.loads((tmp_path / "run" / "results.json").read_text())["head_fit"] == results["head_fit"]

    with pytest.raises(ValueError, match="trained classifier; fitting would overwrite it"):
        load_run(RunConfig(model=str(trained), head_init="fit", **common))
    labels = tmp_path / "labels"
    labels.mkdir()
    for split in ("train", "test"):
        pd.DataFrame({"text": ["a b", "c d"], "label": [0, 1]}).to_parquet(labels / f"{split}.parquet")
    with pytest.raises(ValueError, match="for regression only .*; this task is classification"):
        load_run(RunConfig(model=str(bare), data=str(labels), head_init="fit"))
    with pytest.raises(ValueError, match="prompt-tuning setting"):
        run_finetune(RunConfig(model=str(bare), head_init="fit", output_dir=str(tmp_path / "ft"), **common))


def test_auto_keeps_a_head_transferred_with_init_from(tmp_path, tokenizer):
    bare, _, data = _folders(tmp_path, tokenizer)
    common = dict(data=str(data), label_column="score", max_length=MAX_LENGTH, num_virtual_tokens=N, epochs=1)
    source = tmp_path / "source"
    run_prompt_tuning(RunConfig(model=str(bare), deep=True, output_dir=str(source), **common))
    assert read_prompt_file(source / "prompt.safetensors").head  # the source carries a head to transfer
    target = RunConfig(
        model=str(bare), deep=True, init_from=[str(source)], output_dir=str(tmp_path / "t"), **common
    )
    results = run_prompt_tuning(
        dataclasses.replace(target, epochs=0.01)
    )  # hardly a step: the head as it started
    assert "head_fit" not in results  # auto: the transferred head is kept, not fitted over
    refit = run_prompt_tuning(dataclasses.replace(target, head_init="fit", output_dir=str(tmp_path / "f")))
    assert refit["head_fit"]["rows"] == 24  # asked for explicitly: fitted (with a warning)


@pytest.mark.slow
def test_deep_regression_prompt_learns_only_from_the_fitted_head(tmp_path, tokenizer):
    """The stall on a small setting, before and after the fix.

    A tiny random BERT's last-layer [CLS] states are alike for every input (mean cosine 1.000): the state in
    which stalled MiniLM runs end (docs/deep-prompts.md). From there a deep prompt trained through the head
    as created never learns (r <= 0 at every epoch), while ``head_init="auto"`` (the fitted head) does.
    benchmarks/collapse_tiny.py has the same over seeds and settings.
    """
    bare = tmp_path / "bare"
    make_model("bert", "seq", num_labels=1, seed=1).base_model.save_pretrained(bare)
    tokenizer.save_pretrained(bare)
    data = tmp_path / "data"
    data.mkdir()
    _frame(256, 0).to_parquet(data / "train.parquet")
    _frame(64, 1).to_parquet(data / "test.parquet")
    common = dict(model=str(bare), data=str(data), label_column="score", max_length=MAX_LENGTH,
                  num_virtual_tokens=N, deep=True, epochs=3, seed=1)  # fmt: skip
    stalled = run_prompt_tuning(RunConfig(**common, head_init="model", output_dir=str(tmp_path / "model")))
    fitted = run_prompt_tuning(RunConfig(**common, output_dir=str(tmp_path / "auto")))
    assert max(e["eval_pearson"] for e in stalled["epochs"]) < 0.05
    assert "head_fit" in fitted and fitted["eval_metrics"]["eval_pearson"] > 0.3
