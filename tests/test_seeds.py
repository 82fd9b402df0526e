"""Results as distributions (softprompt/seeds.py) and the recipe settings the seed study compares:
``--seeds``, ``--data-seed``, ``--head-lr``, ``--head-init``, ``--warmup``, ``--scheduler``, ``--deterministic``."""

import json
import logging
import shutil
import statistics

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from softprompt import RunConfig, read_prompt_file, run_seeds
from softprompt.cli import main
from softprompt.models.init import head_output_layer, zero_head_output
from softprompt.runs.loading import load_run
from softprompt.runs.recipes import run_finetune, run_prompt_tuning
from softprompt.runs.seeds import check_seeds, distribution, finished_run, format_seed_summary
from softprompt.training.arguments import default_training_args
from softprompt.training.trainer import PromptTrainer
from tests.conftest import make_model
from tests.test_cli import _run_flags
from tests.test_trainer import learnable_wrapper


def test_distribution_matches_statistics():
    values = [0.812, 0.79, 0.835, 0.801]
    d = distribution(values)
    assert d["mean"] == pytest.approx(statistics.mean(values))
    assert d["sd"] == pytest.approx(statistics.stdev(values))  # sample sd (n - 1)
    assert (d["min"], d["max"], d["n"]) == (0.79, 0.835, 4)
    assert distribution([0.5])["sd"] == 0.0
    with pytest.raises(ValueError, match="finite"):
        distribution([0.5, float("nan")])


@pytest.mark.parametrize("seeds", [[], [1, 1], [1, -2], "123", [1.5], [True]])
def test_bad_seeds_are_refused(seeds):
    with pytest.raises(ValueError, match="seeds"):
        check_seeds(seeds)


def test_cli_seeds_runs_each_seed_on_one_subset(assets, tmp_path, capsys):
    model_dir, data_dir = assets
    out = tmp_path / "multi"
    flags = _run_flags(model_dir, data_dir, out, "--epochs", "2", "--train-size", "40", "--data-seed", "7")
    assert main(["train", *flags, "--seeds", "1", "2", "3"]) == 0
    printed = capsys.readouterr().out
    assert "3 seeds [1, 2, 3]" in printed and "mean ± sd" in printed
    summary = json.loads((out / "seeds.json").read_text())
    runs = [json.loads((out / f"seed-{s}" / "results.json").read_text()) for s in (1, 2, 3)]
    assert [r["config"]["seed"] for r in runs] == [1, 2, 3]
    assert {r["config"]["data_seed"] for r in runs} == {7} and summary["config"]["data_seed"] == 7
    finals = [r["eval_accuracy"] for r in runs]  # the reloaded files' scores
    assert summary["final"]["eval_accuracy"]["values"] == finals
    assert summary["final"]["eval_accuracy"]["mean"] == pytest.approx(statistics.mean(finals))
    per_epoch = [[r["epochs"][e]["eval_accuracy"] for r in runs] for e in range(2)]
    assert [row["eval_accuracy"]["values"] for row in summary["epochs"]] == per_epoch
    # another seed is another run: other prompts
    prompts = {(out / f"seed-{s}" / "prompt.safetensors").read_bytes() for s in (1, 2, 3)}
    assert len(prompts) == 3
    assert "final (reloaded artefacts)" in format_seed_summary(summary)


def test_run_seeds_repeats_a_single_run_exactly(assets, tmp_path):
    """``run_seeds`` with one seed gives the run that ``--seed`` alone gives."""
    model_dir, data_dir = assets
    common = dict(model=str(model_dir), data=str(data_dir), train_size=40, eval_size=20, epochs=1, max_length=32,
                  num_virtual_tokens=4, lr=0.05, label_names=["neg", "pos"])  # fmt: skip
    single = run_prompt_tuning(RunConfig(**common, seed=5, output_dir=str(tmp_path / "one")))
    summary = run_seeds(
        RunConfig(**common, seed=0, data_seed=5, output_dir=str(tmp_path / "many")), [5], run_prompt_tuning
    )
    assert summary["final"]["eval_accuracy"]["values"] == [single["eval_accuracy"]]
    assert (tmp_path / "one" / "prompt.safetensors").read_bytes() == (
        tmp_path / "many" / "seed-5" / "prompt.safetensors"
    ).read_bytes()


def test_resumed_study_keeps_finished_seeds_and_runs_the_rest(assets, tmp_path, caplog):
    """``--seeds 1 2 --resume`` across sittings: seed 1 finished earlier is kept, seed 2 runs, one summary."""
    model_dir, data_dir = assets
    common = dict(model=str(model_dir), data=str(data_dir), train_size=40, eval_size=20, epochs=1, max_length=32,
                  num_virtual_tokens=4, lr=0.05, label_names=["neg", "pos"], data_seed=5)  # fmt: skip
    whole = run_seeds(RunConfig(**common, output_dir=str(tmp_path / "whole")), [1, 2], run_prompt_tuning)
    study = tmp_path / "study"
    run_seeds(RunConfig(**common, output_dir=str(study)), [1], run_prompt_tuning)  # the first sitting
    first = (study / "seed-1" / "prompt.safetensors").stat().st_mtime_ns
    calls = []

    def spy(cfg):
        calls.append((cfg.seed, cfg.resume))
        return run_prompt_tuning(cfg)

    with caplog.at_level(logging.INFO, logger="softprompt.runs.seeds"):
        resumed = run_seeds(RunConfig(**common, output_dir=str(study), resume=True), [1, 2], spy)
    assert calls == [(2, False)]  # seed 1 kept, seed 2 started (nothing to continue)
    assert "seed 1: " in caplog.text and "finished run of these settings; kept" in caplog.text
    printed = format_seed_summary(resumed)
    assert resumed["kept_seeds"] == [1] and "seeds [1] kept from an earlier sitting" in printed
    assert "kept_seeds" not in whole and "kept" not in format_seed_summary(whole)
    assert (study / "seed-1" / "prompt.safetensors").stat().st_mtime_ns == first
    assert resumed["final"] == whole["final"] and resumed["epochs"] == whole["epochs"]
    done = json.loads((study / "seed-2" / "results.json").read_text())
    (study / "seed-2" / "results.json").unlink()  # seed 2 "stopped" after a checkpoint: it continues
    (study / "seed-2" / "checkpoint-1").mkdir(exist_ok=True)
    calls.clear()

    def stopped(cfg):  # what a continued run would return, without running one from the fake checkpoint
        calls.append((cfg.seed, cfg.resume))
        return done

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="softprompt.runs.seeds"):
        run_seeds(RunConfig(**common, output_dir=str(study), resume=True), [1, 2], stopped)
    assert calls == [(2, True)]
    assert "seed 2: continuing from the last checkpoint" in caplog.text
    # a results.json from before a setting existed: that run used the setting's default, so it is kept
    path = study / "seed-1" / "results.json"
    older = json.loads(path.read_text())
    del older["config"]["train_head"]
    path.write_text(json.dumps(older))
    assert finished_run(RunConfig(**common, seed=1, output_dir=str(study / "seed-1"))) == older
    moved = tmp_path / "moved" / "seed-1"  # a study folder copied elsewhere (from committed results, say)
    shutil.copytree(study / "seed-1", moved)
    assert finished_run(RunConfig(**common, seed=1, output_dir=str(moved))) == older
    with pytest.raises(ValueError, match="train_head: True there, False now"):
        finished_run(RunConfig(**common, seed=1, train_head=False, output_dir=str(study / "seed-1")))
    # a finished seed of other settings is refused, naming them: never two recipes in one summary
    with pytest.raises(ValueError, match="other settings.*lr: 0.05 there, 0.02 now"):
        run_seeds(RunConfig(**{**common, "lr": 0.02}, output_dir=str(study), resume=True), [1], spy)
    (study / "seed-1" / "results.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a run's results.json"):
        finished_run(RunConfig(**common, seed=1, output_dir=str(study / "seed-1")))


def test_head_learning_rate_gives_the_head_its_own_group(tokenizer, tmp_path):
    wrapper = learnable_wrapper(tokenizer)
    args = default_training_args(tmp_path, learning_rate=1e-2, has_eval=False)
    trainer = PromptTrainer(wrapper, args=args, head_learning_rate=1e-4)
    optimizer = trainer.create_optimizer()
    by_lr = {g["lr"]: {id(p) for p in g["params"]} for g in optimizer.param_groups}
    head = {id(p) for n, p in wrapper.named_parameters() if ".heads." in n}
    prompt = {id(wrapper.prompts["default"].prompt)}
    assert by_lr[1e-4] == head and by_lr[1e-2] == prompt
    with pytest.raises(ValueError, match="head_learning_rate"):
        PromptTrainer(wrapper, args=args, head_learning_rate=float("nan"))


@pytest.mark.parametrize(
    ("family", "layer"),
    [("bert", "classifier"), ("roberta", "classifier.out_proj"), ("distilbert", "classifier")],
)
def test_zero_head_output_finds_the_output_layer(family, layer):
    model = make_model(family, "seq")
    assert head_output_layer(model, 2) == layer
    zero_head_output(model, 2)
    out = model.get_submodule(layer)
    assert out.weight.abs().sum() == 0 and out.bias.abs().sum() == 0
    ids = torch.tensor([[2, 5, 6, 3]])
    # every class starts at logit 0: a uniform prediction whatever the backbone computes
    assert torch.equal(model(input_ids=ids).logits, torch.zeros(1, 2))


def test_head_init_zeros_touches_only_a_new_head(tmp_path, tokenizer):
    base = make_model("bert", "seq")
    bare = tmp_path / "bare"  # an encoder without a classifier, like MiniLM
    base.base_model.save_pretrained(bare)
    tokenizer.save_pretrained(bare)
    trained = tmp_path / "trained"  # a checkpoint with a (trained) classifier
    base.save_pretrained(trained)
    tokenizer.save_pretrained(trained)
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "test"):
        rows = (json.dumps({"text": "a b", "label": i % 2}) for i in range(4))
        (data / f"{split}.jsonl").write_text("\n".join(rows))
    model = load_run(RunConfig(model=str(bare), data=str(data), head_init="zeros")).model
    assert model.classifier.weight.abs().sum() == 0
    model = load_run(RunConfig(model=str(trained), data=str(data), head_init="zeros")).model
    assert torch.equal(model.classifier.weight, base.classifier.weight)  # kept, with a warning


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [("warmup", -0.1, "warmup"), ("warmup", 2.5, "warmup"), ("scheduler", "triangle", "scheduler"),
     ("head_init", "ones", "head_init"), ("head_lr", 0.0, "head_lr"), ("lr", float("inf"), "lr"),
     ("train_head", "no", "train_head")],
)  # fmt: skip
def test_run_config_refuses_bad_recipe_values(field, value, match):
    with pytest.raises(ValueError, match=match):
        RunConfig(model="m", data="d", **{field: value})


def test_frozen_head_run_keeps_and_saves_the_head_it_started_with(assets, tmp_path, capsys):
    model_dir, data_dir = assets
    out = tmp_path / "frozen"
    assert (
        main(["train", *_run_flags(model_dir, data_dir, out, "--epochs", "1", "--train-head", "false")]) == 0
    )
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["train_head"] is False
    assert results["eval_metrics"]["eval_accuracy"] == results["reloaded_eval_metrics"]["eval_accuracy"]
    pf = read_prompt_file(out / "prompt.safetensors")
    start = dict(AutoModelForSequenceClassification.from_pretrained(model_dir).named_parameters())
    assert pf.head and pf.config.train_head is False
    for name, value in pf.head.items():  # saved, and exactly the checkpoint's head the run started from
        assert torch.equal(value, start[name].detach())
    with pytest.raises(ValueError, match="train_head=False keeps the head frozen"):
        RunConfig(model="m", data="d", train_head=False, head_lr=1e-3)
    with pytest.raises(ValueError, match="train_head=False is a prompt-tuning setting"):
        run_finetune(RunConfig(model=str(model_dir), data=str(data_dir), train_head=False,
                               output_dir=str(tmp_path / "ft")))  # fmt: skip


def test_recipe_flags_reach_trainer(assets, tmp_path, capsys):
    model_dir, data_dir = assets
    out = tmp_path / "recipe"
    flags = _run_flags(model_dir, data_dir, out, "--epochs", "1", "--warmup", "0.25", "--scheduler", "cosine",
                       "--deterministic", "--head-lr", "0.001", "--head-init", "zeros")  # fmt: skip
    assert main(["train", *flags]) == 0
    args = json.loads((out / "training_args.json").read_text())
    assert (args["warmup_steps"], args["lr_scheduler_type"], args["full_determinism"]) == (
        0.25,
        "cosine",
        True,
    )
    config = json.loads((out / "results.json").read_text())["config"]
    assert (config["head_lr"], config["head_init"]) == (0.001, "zeros")
    assert not torch.are_deterministic_algorithms_enabled()  # the run's setting does not outlive the run
