"""Smoke test of benchmarks/prompt_tuning.py: one ``--quick`` run on a tiny BERT and a tiny parquet dataset.

Checks the plumbing (one process per setup, equal steps, every figure reported), not the speed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import transformers

from tests.conftest import WORDS, make_tokenizer, model_config

# spawns one interpreter per setup; each pays ~5-10 s of imports (torch, transformers, evaluate) on 2 cores
pytestmark = pytest.mark.slow
SETUPS = "chapter,peft,softprompt,softprompt-int8"  # softprompt-bf16 (bf16=True) left out for time

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "prompt_tuning.py"
HAS_PEFT = importlib.util.find_spec("peft") is not None
TRAIN, TEST, BATCH = 16, 12, 4
MAX_LENGTH, VIRTUAL = 40, 5  # tiny model: 64 positions


def _reviews(n: int, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 60))]  # some longer than MAX_LENGTH
        words.append("great" if label else "awful")
        rows.append({"text": " ".join(words), "label": label, "id": f"{i}_{label}"})
    return pd.DataFrame(rows)


ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A tiny BERT folder and a tiny IMDb-like folder (train/test parquet)."""
    root = tmp_path_factory.mktemp("bench")
    model_dir, data_dir = root / "tiny-bert", root / "imdb"
    data_dir.mkdir()
    _reviews(40, 0).to_parquet(data_dir / "train.parquet")
    _reviews(30, 1).to_parquet(data_dir / "test.parquet")
    transformers.BertForSequenceClassification(model_config("bert")).save_pretrained(model_dir)
    make_tokenizer().save_pretrained(model_dir)
    return root, model_dir, data_dir


@pytest.fixture(scope="module")
def report(assets) -> tuple[dict, str]:
    root, model_dir, data_dir = assets
    out = root / "results" / "smoke.json"
    flags = {
        "--model": model_dir, "--data": data_dir, "--train-size": TRAIN, "--test-size": TEST, "--batch-size": BATCH,
        "--epochs": 2, "--max-length": MAX_LENGTH, "--num-virtual-tokens": VIRTUAL, "--out": out, "--setups": SETUPS,
    }  # fmt: skip
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--no-warmup",
            *(str(x) for kv in flags.items() for x in kv),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.with_suffix(".md").read_text() in proc.stdout  # the table is printed and written
    return json.loads(out.read_text()), proc.stdout


def test_every_setup_measured_on_equal_terms(report):
    data, _ = report
    steps = 2 * TRAIN // BATCH
    assert data["config"]["steps"] == steps
    expected = {"chapter", "softprompt", "softprompt-int8"} | (
        {"peft"} if HAS_PEFT else set()
    )  # no peft: skipped, not failed
    assert set(data["setups"]) == expected
    for name, r in data["setups"].items():
        assert "error" not in r, name
        assert r["train"]["steps"] == steps, name
        assert r["train"]["samples"] == 2 * TRAIN and r["predict"]["samples"] == TEST
        assert r["train"]["samples_per_s"] > 0 and r["predict"]["samples_per_s"] > 0
        assert 0.0 <= r["accuracy"] <= 1.0
        assert r["peak_rss_mib"]["process"] >= r["peak_rss_mib"]["predicted"] > 0
        assert r["artefact"]["bytes"] > 0
    hidden = model_config("bert").hidden_size
    assert data["setups"]["chapter"]["trainable_parameters"] == VIRTUAL * hidden  # the head stays frozen
    assert data["setups"]["softprompt"]["trainable_parameters"] == VIRTUAL * hidden + hidden * 2 + 2
    assert data["same_subset"] and len({r["subset_sha256"] for r in data["setups"].values()}) == 1
    assert data["machine"]["versions"]["torch"]
    assert data["ratios"]["softprompt"]["train_vs_chapter"] > 0
    assert set(data["targets"]) >= {"softprompt", "softprompt-int8"}  # every softprompt row is judged


def test_table_has_a_row_per_setup(report):
    data, stdout = report
    for name in data["setups"]:
        assert f"| {name} |" in stdout
    assert "Targets (softprompt rows):" in stdout


def test_peft_setup_and_ratios_to_peft(report):
    pytest.importorskip("peft")
    data, _ = report
    peft = data["setups"]["peft"]
    hidden = model_config("bert").hidden_size
    assert peft["trainable_parameters"] == VIRTUAL * hidden + hidden * 2 + 2  # prompt + classifier
    assert "adapter_model.safetensors" in peft["artefact"]["files"]
    ratios = data["ratios"]["softprompt"]
    assert ratios["train_vs_peft"] > 0 and ratios["peak_rss_vs_peft"] > 0
    assert set(data["targets"]["softprompt"]) >= {"accuracy >= peft - 1 pt", "peak RSS <= peft"}


def test_seeds_give_distributions_over_runs(assets):
    root, model_dir, data_dir = assets
    out = root / "results" / "seeds.json"
    flags = {
        "--model": model_dir, "--data": data_dir, "--train-size": TRAIN, "--test-size": TEST, "--batch-size": BATCH,
        "--epochs": 1, "--max-length": MAX_LENGTH, "--num-virtual-tokens": VIRTUAL, "--out": out,
        "--setups": "chapter,softprompt",
    }  # fmt: skip
    cmd = [sys.executable, str(SCRIPT), "--quick", "--no-warmup", *(str(x) for kv in flags.items() for x in kv),
           "--seeds", "1", "2"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["seeds"] == [1, 2] and set(data["setups_by_seed"]) == {"1", "2"}
    for name in ("chapter", "softprompt"):
        accs = [data["setups_by_seed"][s][name]["accuracy"] for s in ("1", "2")]
        assert data["over_seeds"][name]["accuracy"]["values"] == accs
        assert data["over_seeds"][name]["train_vs_chapter"]["n"] == 2
    assert "Over seeds [1, 2]" in proc.stdout


def test_seed_study_runs_recipes_over_seeds(assets):
    root, model_dir, data_dir = assets
    report = root / "study" / "study.json"
    cmd = [sys.executable, str(SCRIPT.parent / "seed_study.py"), "--plan", "variance", "--quick", "--model",
           str(model_dir), "--imdb", str(data_dir), "--settings", "pt-baseline,pt-warmup", "--seeds", "1", "2",
           "--out", str(root / "study"), "--report", str(report)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(report.read_text())
    summaries = data["variance"]["summaries"]
    assert set(summaries) == {"pt-baseline", "pt-warmup"} and data["chosen"]["setting"] in summaries
    for name, summary in summaries.items():
        finals = [summary["results"][s]["eval_accuracy"] for s in ("1", "2")]
        assert summary["final"]["eval_accuracy"]["values"] == finals, name
    warmup = json.loads(
        (root / "study" / "variance" / "pt-warmup" / "seed-1" / "training_args.json").read_text()
    )
    assert warmup["warmup_steps"] == 0.1
    assert "| pt-baseline | 2 |" in proc.stdout
