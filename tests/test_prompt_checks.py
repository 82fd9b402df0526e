"""Hostile prompt files (softprompt/prompt_checks.py): every number bounded before use, one validator for
reading and writing, and a seeded fuzz run in which every mutated file loads and predicts finite values
or is refused with a library error that names the file."""

import importlib.util
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import save

from softprompt import read_prompt_file
from softprompt.files.checks import MAX_ABS_VALUE
from tests.conftest import make_model
from tests.test_cli import REPO

TEXTS = ["a good film", "a bad plot that goes on"]


def _fuzz_module():
    spec = importlib.util.spec_from_file_location(
        "fuzz_prompt_files", REPO / "benchmarks" / "fuzz_prompt_files.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    """A deep prompt file with a head and label names, and what it holds (the fuzz harness's own)."""
    path, meta, tensors, _ = _fuzz_module().valid_prompt_file(tmp_path_factory.mktemp("checks"))
    return path, meta, tensors


def _write(tmp_path, meta, tensors, name="bad.safetensors"):
    path = tmp_path / name
    path.write_bytes(save(tensors, metadata=meta))
    return path


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("num_labels", "10000000", "outside"),
        ("num_labels", "99999999999999999999999", "whole number"),
        ("num_labels", "-1", "whole number"),
        ("num_labels", "1e3", "whole number"),
        ("embedding_dim", "4294967296", "whole number|outside"),
        ("num_layers", "100000000", "outside"),
        ("id2label", "[1, 2]", "id2label"),
        ("id2label", '"pos"', "id2label"),
        ("id2label", '{"0": "neg", "7": "pos"}', "ids"),
        ("id2label", "[" * 100_000 + "]" * 100_000, "unreadable"),
        ("config", "{" * 50_000, "unreadable"),
        ("base_fingerprint", "[]", "not an object"),
        ("temperature", "nan", "temperature"),
        ("temperature", "inf", "temperature"),
        ("temperature", "-1", "temperature"),
        ("temperature", "0", "temperature"),
        ("temperature", "1e-300", "temperature"),
        ("temperature", "1e9", "temperature"),
    ],
)
def test_bad_metadata_is_refused_at_once(valid, tmp_path, key, value, match):
    path, meta, tensors = valid
    bad = _write(tmp_path, {**meta, key: value}, tensors)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=match) as info:
        read_prompt_file(bad)
    assert str(bad) in str(info.value)
    assert time.perf_counter() - start < 5  # nothing is allocated from the number


@pytest.mark.parametrize(
    "dtype", [torch.float16, torch.float64, torch.bfloat16, torch.int64, torch.bool, torch.float8_e4m3fn]
)
def test_tensors_other_than_float32_are_refused(valid, tmp_path, dtype):
    path, meta, tensors = valid
    bad = _write(tmp_path, meta, {**tensors, "prompt_embeddings": tensors["prompt_embeddings"].to(dtype)})
    with pytest.raises(ValueError, match="float32 tensors only"):
        read_prompt_file(bad)


@pytest.mark.parametrize("key", ["prompt_embeddings", "deep_prompts", "head.classifier.weight"])
def test_huge_values_are_refused_when_reading_and_when_saving(valid, tmp_path, tokenizer, key):
    path, meta, tensors = valid
    huge = tensors[key].clone()
    huge.view(-1)[0] = 1e30  # finite, but overflows attention and LayerNorm
    with pytest.raises(ValueError, match="beyond"):
        read_prompt_file(_write(tmp_path, meta, {**tensors, key: huge}))
    pf = read_prompt_file(path)
    pf.prompt = pf.prompt.clone()
    pf.prompt[0, 0] = 2 * MAX_ABS_VALUE
    with pytest.raises(ValueError, match="beyond"):
        pf.save(tmp_path / "out.safetensors")


def test_save_refuses_what_read_refuses(valid, tmp_path):
    path, _, _ = valid
    pf = read_prompt_file(path)
    for change, match in ((dict(temperature=1e9), "temperature"), (dict(id2label={0: "a", 5: "b"}), "ids"),
                          (dict(num_labels=3, id2label={}), "3 rows")):  # fmt: skip
        bad = read_prompt_file(path)
        for k, v in change.items():
            setattr(bad, k, v)
        with pytest.raises(ValueError, match=match):
            bad.save(tmp_path / "never.safetensors")
    assert not (tmp_path / "never.safetensors").exists()
    pf.save(tmp_path / "fine.safetensors")


def test_cli_refuses_a_crafted_num_labels_in_one_line(valid, tmp_path, tokenizer):
    path, meta, tensors = valid
    model_dir = tmp_path / "model"
    make_model("bert").save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    bad = _write(tmp_path, {**meta, "num_labels": "10000000"}, tensors)
    cmd = [
        sys.executable,
        "-m",
        "softprompt",
        "predict",
        "--prompt",
        str(bad),
        "--model",
        str(model_dir),
        "a film",
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "num_labels=10000000 is outside" in proc.stderr.strip().splitlines()[-1]
    assert time.perf_counter() - start < 60


def test_fuzzed_files_load_and_predict_finite_values_or_are_refused(tmp_path):
    """300 seeded mutations (benchmarks/fuzz_prompt_files.py runs 10,000): each loads and predicts finite
    values or is refused with a library error naming the file."""
    counts = _fuzz_module().fuzz(300, seed=12, workdir=tmp_path)
    assert counts["refused"] > 100 and counts["loaded"] > 10, counts  # both paths exercised
