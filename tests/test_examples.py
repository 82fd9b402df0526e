"""The examples end to end on a tiny model and tiny IMDb-like data (the real run is in docs/results.md)."""

import json
import os
import subprocess
import sys

from tests.test_cli import REPO, _run_flags, assets  # noqa: F401  (fixture)

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def test_prompt_tune_example_reports_a_distribution_over_seeds(assets, tmp_path):  # noqa: F811
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
