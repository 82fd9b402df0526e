"""The examples end to end on a tiny model and tiny IMDb-like data (the real run is in docs/results.md)."""

import json
import os
import subprocess
import sys

from tests.test_cli import REPO, _run_flags

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def test_prompt_tune_example_reports_a_distribution_over_seeds(assets, tmp_path):
    model_dir, data_dir = assets
    out = tmp_path / "pt"
    flags = _run_flags(model_dir, data_dir, out, "--epochs", "2", "--train-size", "32", "--eval-size", "16")
    cmd = [sys.executable, "examples/imdb_prompt_tune.py", *flags, "--seeds", "4", "5"]
    proc = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "seeds.json").read_text())
    assert summary["seeds"] == [4, 5] and len(summary["epochs"]) == 2
    runs = [json.loads((out / f"seed-{s}" / "results.json").read_text()) for s in (4, 5)]
    assert summary["final"]["eval_accuracy"]["values"] == [r["eval_accuracy"] for r in runs]
    assert "2 seeds [4, 5]" in proc.stdout and "epoch 2:" in proc.stdout
    # the example's own defaults and the flags given, resolved into each run's run_config.json
    resolved = json.loads((out / "seed-5" / "run_config.json").read_text())
    assert (resolved["seed"], resolved["train_size"], resolved["eval_split"], resolved["reference"]) == (
        5,
        32,
        "test",
        0.874,
    )
    assert resolved["label_names"] == ["neg", "pos"] and resolved["data_seed"] == 42


def test_examples_take_the_trainingarguments_flags_and_a_config_file(tmp_path):
    """Parsing only, as the example's main() does: its defaults, then the config file, then the flags."""
    import runpy

    from softprompt.cli import CommandParser, add_run_flags, run_config_from_args

    defaults = runpy.run_path(str(REPO / "examples" / "imdb_finetune.py"), run_name="example")[
        "IMDB_DEFAULTS"
    ]
    config = tmp_path / "run.yaml"
    config.write_text("train_size: 100\nweight_decay: 0.1\nlr: 0.5\n")
    parser = add_run_flags(CommandParser(prog="imdb_finetune.py"), defaults)
    args = parser.parse_args(["--config", str(config), "--lr", "3e-5", "--gradient_accumulation_steps", "2"])
    cfg = run_config_from_args(args)
    assert (cfg.model, cfg.lr, cfg.train_size, cfg.batch_size, cfg.label_names) == (
        "bert-base-uncased", 3e-5, 100, 32, ["neg", "pos"])  # fmt: skip
    assert cfg.training_args == {"weight_decay": 0.1, "gradient_accumulation_steps": 2}


def test_examples_with_hub_defaults_fail_in_one_line_offline():
    """Offline, the examples' Hub defaults (bert-base-uncased, imdb) end in one line saying what to pass."""
    env = {**ENV, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    for script in ("examples/imdb_prompt_tune.py", "examples/imdb_finetune.py"):
        proc = subprocess.run(
            [sys.executable, script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
        )
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert lines[-1].startswith(f"{script.split('/')[1]}: error:") and "pass a folder" in lines[-1]
