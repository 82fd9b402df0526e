"""softprompt.finetune: the chapter's recipe reaches Trainer, learning, best epoch kept, crash-safe save, exact reload."""

import json
import os
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file

from softprompt import SoftPromptConfig, SoftPromptWrapper, tokenize_dataset
from softprompt.finetune import FinetuneResult, calibrate_finetuned, finetune, load_finetuned, save_finetuned
from softprompt.finetune import saving as saving_module
from softprompt.inference import predict
from tests.conftest import batch, make_model, model_config
from tests.test_trainer import toy_sentiment

ID2LABEL = {0: "neg", 1: "pos"}
LR = 6e-3  # the tiny model needs far more than the chapter's 2e-5 to learn in a few epochs


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread; two threads on two shared cores oversubscribe (30x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def learnable_model(seed: int = 0) -> transformers.BertForSequenceClassification:
    """Tiny BERT with a wider init than the default 0.02, so its [CLS] output depends on the input."""
    torch.manual_seed(seed)
    cfg = model_config("bert")
    cfg.initializer_range = 0.2
    cfg.id2label, cfg.label2id = ID2LABEL, {v: k for k, v in ID2LABEL.items()}
    return transformers.BertForSequenceClassification(cfg).eval()


@pytest.fixture(scope="module")
def raw():
    return toy_sentiment()


@pytest.fixture(scope="module")
def toy(raw, tokenizer):
    return tokenize_dataset(raw, tokenizer, max_length=64)


def _quiet(**kw):
    return {"disable_tqdm": True, "logging_strategy": "epoch", **kw}


@pytest.fixture(scope="module")
def trained(tokenizer, toy, tmp_path_factory):
    model = learnable_model()
    out = tmp_path_factory.mktemp("ft")
    result = finetune(model, tokenizer, toy, toy, output_dir=out, num_train_epochs=4, learning_rate=LR,
                      per_device_train_batch_size=8, **_quiet())  # fmt: skip
    return model, result


def _epoch_evals(result: FinetuneResult) -> list[dict]:
    return [h for h in result.log_history if "eval_accuracy" in h][:-1]  # the last is the final evaluate()


def test_finetuning_learns_and_keeps_the_best_epoch(trained):
    model, result = trained
    evals = _epoch_evals(result)
    assert len(evals) == 4
    best = max(evals, key=lambda h: h["eval_accuracy"])
    assert result.eval_metrics["eval_accuracy"] == best["eval_accuracy"] >= 0.8  # chance is 0.5
    assert Path(result.best_checkpoint).name == f"checkpoint-{best['step']}"
    # here epochs 3 and 4 both reach 1.0 and Trainer keeps the first, so restoring is visible
    assert best["step"] < evals[-1]["step"]
    assert result.eval_metrics["eval_loss"] == best["eval_loss"] != evals[-1]["eval_loss"]
    # the kept model is the best checkpoint's, in memory and in the final folder
    best_weights = load_file(Path(result.best_checkpoint) / "model.safetensors")
    final_weights = load_file(result.model_dir / "model.safetensors")
    state = model.state_dict()
    assert best_weights.keys() == final_weights.keys()
    assert all(torch.equal(best_weights[k], final_weights[k]) for k in best_weights)
    assert all(torch.equal(best_weights[k], state[k]) for k in best_weights)
    assert not model.training
    assert result.seconds > 0 and result.train_metrics["train_loss"] > 0


def test_saved_folder_reloads_with_identical_logits(trained, tokenizer):
    model, result = trained
    names = {p.name for p in result.model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer_config.json", "training_args.json"} <= names
    assert not names & {"training_args.bin", "pytorch_model.bin"}  # no pickles
    assert not [n for n in names if n.startswith(".saving-")]  # the temp folder is gone

    reloaded, tok = load_finetuned(result.model_dir)
    assert type(reloaded) is type(model) and not reloaded.training
    assert reloaded.config.id2label == ID2LABEL
    assert reloaded.config.softprompt_temperature == 1.0
    texts = ["the film was superb", "dull plot , awful acting", "a movie"]
    assert tok(texts)["input_ids"] == tokenizer(texts)["input_ids"]
    inputs = batch(tok, texts)
    with torch.inference_mode():
        assert torch.equal(reloaded(**inputs).logits, model(**inputs).logits)


def test_predict_on_the_reloaded_model(trained, raw):
    _, result = trained
    model, tok = load_finetuned(result.model_dir)
    preds = predict(model, tok, raw["text"])
    assert len(preds) == len(raw)
    assert {p.label_name for p in preds} <= {"neg", "pos"}
    accuracy = sum(p.label == y for p, y in zip(preds, raw["label"])) / len(raw)
    assert accuracy == pytest.approx(result.eval_metrics["eval_accuracy"])
    assert all(0.5 <= p.confidence <= 1 for p in preds)


def test_calibrated_temperature_is_saved_and_reloaded(trained, raw, tmp_path):
    _, result = trained
    model, tok = load_finetuned(result.model_dir)
    folder = save_finetuned(model, tok, tmp_path / "copy")
    temperature = calibrate_finetuned(model, tok, raw["text"], raw["label"], model_dir=folder)
    assert temperature > 0 and temperature != 1.0
    assert model.config.softprompt_temperature == temperature
    reloaded, _ = load_finetuned(folder)
    assert reloaded.config.softprompt_temperature == temperature
    assert reloaded.config.id2label == ID2LABEL
    with pytest.raises(ValueError, match="one label per text"):
        calibrate_finetuned(model, tok, raw["text"][:3], [0, 1])
    with pytest.raises(FileNotFoundError, match="config.json"):
        calibrate_finetuned(model, tok, ["a"], [0], model_dir=tmp_path)


def test_the_chapter_recipe_reaches_trainer(tokenizer, toy, tmp_path):
    seen = {}

    class Capture(transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            seen["args"] = args

    # every recipe argument left at its default; 16 rows keep the 3 epochs to 3 steps
    result = finetune(learnable_model(), tokenizer, toy.select(range(40, 56)), toy.select(range(40, 56)),
                      output_dir=tmp_path, callbacks=[Capture()])  # fmt: skip
    args = seen["args"]
    saved = json.loads((tmp_path / "training_args.json").read_text())
    for a in (args.to_dict(), saved):
        assert a["learning_rate"] == 2e-5
        assert a["weight_decay"] == 0.01
        assert a["num_train_epochs"] == 3
        assert a["per_device_train_batch_size"] == 32
        assert a["gradient_accumulation_steps"] == 1
        assert a["seed"] == 42
        assert a["eval_strategy"] == "epoch" and a["save_strategy"] == "epoch"
        assert a["load_best_model_at_end"] is True
        assert a["metric_for_best_model"] == "accuracy" and a["greater_is_better"] is True
        assert a["report_to"] in ([], ["none"], "none")
        assert a["bf16"] is False
        assert a["lr_scheduler_type"] == "linear" and a["optim"].startswith("adamw")
    assert len(_epoch_evals(result)) == 3
    state = json.loads((Path(result.best_checkpoint) / "trainer_state.json").read_text())
    assert state["best_metric"] == result.eval_metrics["eval_accuracy"]


def test_bf16_is_autocast_over_fp32_weights_on_cpu(tokenizer, toy, tmp_path):
    model = learnable_model()
    dtypes = set()
    hook = model.classifier.register_forward_hook(
        lambda m, i, out: dtypes.add(out.dtype) if m.training else None
    )
    seen = {}

    class Capture(transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            seen["args"] = args

    result = finetune(model, tokenizer, toy, output_dir=tmp_path, num_train_epochs=3, learning_rate=LR,
                      per_device_train_batch_size=8, bf16=True, callbacks=[Capture()], **_quiet())  # fmt: skip
    hook.remove()
    assert seen["args"].bf16
    if not torch.cuda.is_available():
        assert seen["args"].use_cpu
    assert dtypes == {torch.bfloat16}  # the forward ran under bf16 autocast
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32
    # without eval data: no per-epoch evaluation, no best checkpoint, the last epoch is saved
    assert result.eval_metrics == {} and result.best_checkpoint is None
    reloaded, tok = load_finetuned(result.model_dir)
    assert reloaded.dtype == torch.float32
    accuracy = sum(
        p.label == y for p, y in zip(predict(reloaded, tok, toy_sentiment()["text"]), toy["labels"])
    )
    assert accuracy / len(toy) >= 0.75


def test_resume_ends_with_the_same_weights(tokenizer, toy, tmp_path):
    data = toy.select(range(24, 72))  # both classes, 6 steps per epoch
    kw = dict(num_train_epochs=2, learning_rate=LR, per_device_train_batch_size=8, load_best_model_at_end=False,
              save_total_limit=None, **_quiet())  # fmt: skip
    full = learnable_model()
    finetune(full, tokenizer, data, data, output_dir=tmp_path / "full", **kw)

    class StopAfterEpoch(transformers.TrainerCallback):
        def on_epoch_end(self, args, state, control, **kwargs):
            control.should_training_stop = True

    finetune(
        learnable_model(),
        tokenizer,
        data,
        data,
        output_dir=tmp_path / "cut",
        callbacks=[StopAfterEpoch()],
        **kw,
    )
    resumed = learnable_model()  # a fresh process would start from exactly this
    finetune(resumed, tokenizer, data, data, output_dir=tmp_path / "cut",
             resume_from_checkpoint=str(tmp_path / "cut" / "checkpoint-6"), **kw)  # fmt: skip
    a, b = full.state_dict(), resumed.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_bad_inputs_fail_before_anything_is_written(tokenizer, toy, tmp_path):
    out = tmp_path / "run"
    model = learnable_model()

    def fails(exc, match, *args, **kw):
        kw = {"output_dir": out, **kw}
        with pytest.raises(exc, match=match):
            finetune(*(args or (model, tokenizer, toy)), **kw)

    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=2), tokenizer=tokenizer)
    fails(TypeError, "use train_prompt", wrapper, tokenizer, toy)
    fails(
        TypeError,
        "sequence- or token-classification or question-answering head",
        make_model("bert", "base"),
        tokenizer,
        toy,
    )
    fails(ValueError, "token-classification head needs one list", make_model("bert", "token"), tokenizer, toy)
    fails(ValueError, "needs the model's tokenizer", model, None, toy)
    fails(TypeError, "must be a transformers tokenizer", model, "bert-base-uncased", toy)
    fails(ValueError, "train_dataset is empty", model, tokenizer, toy.select([]))
    fails(ValueError, "eval_dataset is empty", model, tokenizer, toy, toy.select([]))
    fails(TypeError, "must be a datasets.Dataset", model, tokenizer, [{"input_ids": [2, 3], "labels": 0}])
    fails(ValueError, r"lacks columns \['labels'\]", model, tokenizer, toy.remove_columns("labels"))
    fails(
        ValueError, r"lacks columns \['input_ids'\]", model, tokenizer, toy, toy.remove_columns("input_ids")
    )
    three = toy.map(lambda r: {"labels": 2 if r["labels"] else 0})
    fails(ValueError, r"labels 0..2 but the model has num_labels=2.*num_labels=3", model, tokenizer, three)
    fails(ValueError, r"labels -1..1", model, tokenizer, toy, toy.map(lambda r, i: {"labels": -1 if i == 0 else r["labels"]}, with_indices=True))  # fmt: skip
    fails(ValueError, "float32 master weights", learnable_model().to(torch.bfloat16), tokenizer, toy)
    fails(
        ValueError,
        "metric_for_best_model='pearson'",
        model,
        tokenizer,
        toy,
        toy,
        metric_for_best_model="pearson",
    )
    fails(ValueError, "learning_rate must be > 0", learning_rate=0)
    fails(TypeError, "not both", training_args=transformers.TrainingArguments(str(out)), warmup_steps=3)
    assert not out.exists()
    assert not list(tmp_path.iterdir())


def test_load_finetuned_refuses_a_folder_without_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_finetuned(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        load_finetuned(tmp_path)


def test_a_crash_while_saving_leaves_no_loadable_half_model(tokenizer, tmp_path, monkeypatch):
    first, second = learnable_model(seed=0), learnable_model(seed=1)
    save_finetuned(first, tokenizer, tmp_path)
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(b"stale shard of an earlier save")
    (tmp_path / "notes.txt").write_text("the user's own file")

    real_replace = os.replace

    def crash_on_config(src, dst):
        if Path(dst).name == "config.json":
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(saving_module.os, "replace", crash_on_config)
    with pytest.raises(OSError, match="disk full"):
        save_finetuned(second, tokenizer, tmp_path)
    monkeypatch.undo()
    # new weights are in place but without their config the folder is refused, not half loaded
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        load_finetuned(tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".saving-")]

    save_finetuned(second, tokenizer, tmp_path)
    reloaded, _ = load_finetuned(tmp_path)
    assert all(
        torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), second.state_dict().values())
    )
    assert not (tmp_path / "model-00001-of-00002.safetensors").exists()  # stale shard removed
    assert (tmp_path / "notes.txt").read_text() == "the user's own file"  # other files left alone
