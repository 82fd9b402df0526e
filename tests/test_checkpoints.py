"""Resuming (softprompt/checkpoints.py, runs): the newest complete checkpoint, a used run folder never
mixed with a new run, and kill -9 at random moments of a run with per-step checkpoints."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

from softprompt.cli import main
from softprompt.training.checkpoints import checkpoint_is_complete, latest_complete_checkpoint
from tests.test_cli import REPO, _run_flags


def _checkpoint(root, step, *, state=True, weights=True):
    folder = root / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    if weights:
        (folder / "prompt.safetensors").write_bytes(b"x")
    if state:
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return folder


def test_the_newest_complete_checkpoint_is_chosen(tmp_path):
    _checkpoint(tmp_path, 10)
    _checkpoint(tmp_path, 20)
    half = _checkpoint(tmp_path, 30, state=False)  # killed before trainer_state.json
    (tmp_path / "checkpoint-40").mkdir()  # killed at once
    torn = _checkpoint(tmp_path, 50)
    (torn / "trainer_state.json").write_text('{"global_st')  # killed while writing the state
    assert not checkpoint_is_complete(half) and not checkpoint_is_complete(torn)
    with pytest.warns(UserWarning, match="incomplete checkpoint"):
        assert latest_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-20")
    assert latest_complete_checkpoint(tmp_path / "none") is None


def test_a_used_run_folder_needs_resume_or_overwrite(assets, tmp_path, capsys):
    model_dir, data_dir = assets
    out = tmp_path / "run"
    flags = _run_flags(model_dir, data_dir, out, "--epochs", "2")
    assert main(["train", *flags]) == 0
    first = (out / "prompt.safetensors").read_bytes()
    capsys.readouterr()
    assert main(["train", *flags]) == 2  # a rerun would mix its checkpoints with the old ones
    assert "--resume" in capsys.readouterr().err and (out / "prompt.safetensors").read_bytes() == first
    assert main(["train", *flags, "--resume", "--overwrite"]) == 2
    (out / "checkpoint-999").mkdir()  # a stale folder of another run
    assert main(["train", *flags, "--overwrite"]) == 0
    assert not (out / "checkpoint-999").exists()
    assert (out / "prompt.safetensors").read_bytes() == first  # the same seed, the same prompt
    assert main(["train", *_run_flags(model_dir, data_dir, tmp_path / "empty"), "--resume"]) == 2


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_it_again(assets, tmp_path, caplog):
    """Killed while writing its first checkpoint, a run leaves only an incomplete checkpoint folder: a plain rerun
    is refused (the folder is in use) and --resume now starts the run from the beginning, saying so."""
    model_dir, data_dir = assets
    out = tmp_path / "run"
    flags = _run_flags(model_dir, data_dir, out, "--epochs", "1")
    _checkpoint(out, 2, state=False)  # the prompt was written, trainer_state.json never was
    assert main(["train", *flags]) == 2
    assert main(["train", *flags, "--resume"]) == 0
    assert (
        "holds no complete checkpoint" in caplog.text and "starting the run from the beginning" in caplog.text
    )
    assert 0 <= json.loads((out / "results.json").read_text())["eval_accuracy"] <= 1
    again = tmp_path / "again"
    assert main(["train", *_run_flags(model_dir, data_dir, again, "--epochs", "1")]) == 0
    assert (again / "prompt.safetensors").read_bytes() == (out / "prompt.safetensors").read_bytes()


KILL_SCRIPT = """
import sys, transformers
sys.path.insert(0, {repo!r})
from softprompt import tokenize_dataset, train_prompt
from tests.conftest import make_tokenizer
from tests.test_trainer import learnable_wrapper, toy_sentiment
tok = make_tokenizer()
data = tokenize_dataset(toy_sentiment(), tok, max_length=64, num_virtual_tokens=4)
wrapper = learnable_wrapper(tok)
train_prompt(wrapper, data, output_dir=sys.argv[1], num_train_epochs=6, learning_rate=0.05,
             per_device_train_batch_size=8, save_strategy="steps", save_steps=1, save_total_limit=None,
             disable_tqdm=True, resume_from_checkpoint=True if len(sys.argv) > 2 else None)
"""


@pytest.mark.slow
def test_kill_9_then_resume_ends_on_the_uninterrupted_prompt(tmp_path):
    """A run with a checkpoint every step, killed at random moments (some while a checkpoint is being
    written), resumed with resume_from_checkpoint=True: the same final prompt as a run never killed."""
    script = tmp_path / "train.py"
    script.write_text(KILL_SCRIPT.format(repo=str(REPO)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    run = [sys.executable, str(script)]
    subprocess.run([*run, str(tmp_path / "whole")], check=True, env=env, capture_output=True, timeout=300)
    expected = load_file(tmp_path / "whole" / "prompt.safetensors")
    rng = random.Random(3)
    for trial in range(3):
        out = tmp_path / f"killed-{trial}"
        proc = subprocess.Popen(
            [*run, str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list(out.glob("checkpoint-*"))) < rng.randint(2, 15):
            time.sleep(0.01)
        time.sleep(rng.random() * 0.2)  # somewhere inside a step or a checkpoint write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert (
            proc.returncode == -signal.SIGKILL and not (out / "prompt.safetensors").exists()
        )  # killed mid-run
        subprocess.run([*run, str(out), "resume"], check=True, env=env, capture_output=True, timeout=300)
        got = load_file(out / "prompt.safetensors")
        assert set(got) == set(expected)
        for key in expected:
            assert (got[key] == expected[key]).all(), (trial, key)
