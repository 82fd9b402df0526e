"""docs/tutorial.md, executed: every shell command and the Python block, each in its own process.

Stand-ins for what this machine lacks, nothing else: ``$MODEL`` (the page exports a Hub id) is a tiny BERT
folder, ``reviews.csv`` is a small file of the page's shape, and the Hub is the local stand-in of
``tests/hub_server.py`` reached through ``HF_ENDPOINT``. ``pip install softprompt`` is the one line not
run (the package under test is installed already).
"""

import json
import os
import random
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import transformers

from tests.conftest import WORDS, make_tokenizer, model_config
from tests.hub_server import HubStandIn

PAGE = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)
POSITIVE, NEGATIVE = (
    ["great", "good", "superb", "fantastic", "best", "loved"],
    ["bad", "dull", "boring", "awful", "worst", "hated"],
)


def _reviews(path: Path, n: int = 80) -> None:
    rng = random.Random(0)
    rows = []
    for i in range(n):
        label = "positive" if i % 2 else "negative"
        words = [*rng.sample(WORDS, 4), rng.choice(POSITIVE if label == "positive" else NEGATIVE)]
        rng.shuffle(words)
        rows.append({"review": " ".join(words), "sentiment": label})
    pd.DataFrame(rows).to_csv(path, index=False)


def _commands(page: str) -> list[str]:
    lines = []
    for kind, code in BLOCK.findall(page):
        if kind == "bash":
            lines += [line.split("  #")[0].strip() for line in code.splitlines() if line.strip()]
    return lines


def _run(line: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{line}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.slow
def test_every_tutorial_command_runs(tmp_path):
    page = PAGE.read_text()
    model_dir = tmp_path / "tiny-bert"
    torch.manual_seed(0)
    transformers.AutoModelForSequenceClassification.from_config(model_config("bert", 2)).save_pretrained(
        model_dir
    )
    make_tokenizer().save_pretrained(model_dir)
    work = tmp_path / "work"
    work.mkdir()
    _reviews(work / "reviews.csv")

    outputs: dict[str, str] = {}
    with HubStandIn() as hub:
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf"),
               "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # fmt: skip
        ran = 0
        for line in _commands(page):
            words = shlex.split(line)
            if words[:2] == ["pip", "install"]:
                continue  # installed already: the package under test
            if words[0] == "export":  # the page's model: a tiny local stand-in here
                name = words[1].split("=")[0]
                assert name == "MODEL", line
                env[name] = str(model_dir)
                continue
            assert words[0] == "softprompt", f"a command the test does not know how to run: {line}"
            outputs[" ".join(words[:2]) + (" hub" if "me/" in line else "")] = _run(line, work, env)
            ran += 1
        (python_block,) = [code for kind, code in BLOCK.findall(page) if kind == "python"]
        (tmp_path / "tutorial_block.py").write_text(python_block)
        other = {
            **env,
            "HF_HOME": str(tmp_path / "hf-other"),
            "HF_HUB_CACHE": str(tmp_path / "hf-other" / "hub"),
        }
        printed = _run(f"{shlex.quote(sys.executable)} {tmp_path / 'tutorial_block.py'}", tmp_path, other)
        assert set(hub.repos) == {"me/reviews-sentiment"}

    assert ran == 5, ran
    results = json.loads((work / "runs" / "reviews" / "results.json").read_text())
    assert results["eval_split"] == "train[holdout 0.2]" and results["eval_samples"] == 16
    scored = json.loads(outputs["softprompt eval"])
    assert scored["eval_accuracy"] == results["reloaded_eval_metrics"]["eval_accuracy"]  # to the last digit
    (local,) = [json.loads(x) for x in outputs["softprompt predict"].splitlines()]
    (remote,) = [json.loads(x) for x in outputs["softprompt predict hub"].splitlines()]
    assert local["label_name"] in ("negative", "positive") and remote["label_name"] in (
        "negative",
        "positive",
    )
    assert "Prediction(" in printed or "label_name" in printed
