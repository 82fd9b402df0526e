"""`torchrun --nproc_per_node 2` on CPU (gloo): prompt tuning and fine-tuning across processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from softprompt import SoftPromptWrapper, read_prompt_file
from softprompt.finetune import load_finetuned
from tests.test_cli import REPO, _run_flags

pytestmark = pytest.mark.distributed


def _torchrun(command, model_dir, data_dir, out):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "softprompt.cli", command, *_run_flags(model_dir, data_dir, out, "--epochs", "2")]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_torchrun_prompt_tuning(assets, tmp_path, tokenizer):
    model_dir, data_dir = assets
    out = tmp_path / "pt"
    _torchrun("train", model_dir, data_dir, out)
    pf = read_prompt_file(out / "prompt.safetensors")  # a valid prompt file
    assert pf.config.num_virtual_tokens == 4 and pf.num_labels == 2
    results = json.loads((out / "results.json").read_text())
    state = json.loads((Path(results["best_checkpoint"]) / "trainer_state.json").read_text())
    # 64 examples, batch 8 per process, 2 processes: 4 steps an epoch, not 8
    assert state["global_step"] in (4, 8) and state["max_steps"] == 8
    import transformers

    model = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir)
    SoftPromptWrapper.from_prompt(model, out / "prompt.safetensors", tokenizer=tokenizer)


def test_torchrun_finetune(assets, tmp_path):
    model_dir, data_dir = assets
    out = tmp_path / "ft"
    _torchrun("finetune", model_dir, data_dir, out)
    model, tok = load_finetuned(out)
    assert model.config.num_labels == 2
    assert json.loads((out / "results.json").read_text())["eval_samples"] == 40
