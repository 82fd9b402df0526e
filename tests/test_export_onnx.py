"""ONNX export of merged prompts (softprompt.hub.onnx_export): ONNX Runtime, in a process without softprompt,
gives the wrapper's outputs within 1e-4, for encoders (sequence and token classification, question
answering) and decoder classifiers; the int8 graph stays close; language models are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from tests.test_export import QA, RUNNER, TEXTS, WORD_TEXTS, _cases, _without_prompt

ONNX_CASES = ["bert-seq-after_cls", "roberta-seq-prepend", "deberta-v2-seq-after_cls", "modernbert-seq-after_cls",
              "distilbert-token", "bert-qa", "gpt2-seq", "llama-seq"]  # fmt: skip
PARITY = 1e-4


@pytest.fixture(scope="module")
def onnx_results(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("onnx")
    cases = {name: case for name, case in _cases().items() if name in ONNX_CASES}
    jobs = {}
    for name, case in cases.items():
        folder = case["wrapper"].export_onnx(root / name, quantize=name == "bert-seq-after_cls")
        case["folder"] = folder
        inputs, pairs = (
            (QA, True) if case["kind"] == "qa" else (WORD_TEXTS if case["kind"] == "token" else TEXTS, False)
        )
        case["inputs"], case["pairs"] = inputs, pairs
        for file in ("model.onnx", "model_quantized.onnx"):
            if (folder / file).is_file():
                jobs[f"{name}/{file}"] = {
                    "folder": str(folder),
                    "kind": "onnx",
                    "file": file,
                    "inputs": inputs,
                    "pairs": pairs,
                }
    (root / "jobs.json").write_text(json.dumps(jobs))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    proc = subprocess.run([sys.executable, str(RUNNER), str(root / "jobs.json"), str(root / "out.json")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads((root / "out.json").read_text())
    return {"cases": cases, "out": out}


def _reference(case: dict) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The wrapper's outputs on the case's inputs (temperature applied as the export folds it), and the mask."""
    w = case["wrapper"]
    if case["pairs"]:
        first, second = zip(*case["inputs"])
        enc = w.tokenize(list(first), list(second))
    else:
        enc = w.tokenize(case["inputs"])
    with torch.no_grad():
        out = w(**enc)
    t = w.slot().temperature if case["kind"] in ("seq", "decoder-seq") else 1.0
    keys = ("start_logits", "end_logits") if case["kind"] == "qa" else ("logits",)
    return {k: out[k] / t for k in keys}, enc["attention_mask"]


@pytest.mark.parametrize("name", ONNX_CASES)
def test_onnx_runtime_matches_wrapper(onnx_results, name):
    case = onnx_results["cases"][name]
    got = onnx_results["out"][f"{name}/model.onnx"]
    want, mask = _reference(case)
    at = json.loads((case["folder"] / "config.json").read_text())["softprompt_export"]["insert_at"]
    for key, expected in want.items():
        value = torch.tensor(got[key])
        if case["kind"] in ("token", "qa"):  # per token: without the prompt's columns, on real tokens
            value, expected = _without_prompt(value, at)[mask.bool()], expected[mask.bool()]
        torch.testing.assert_close(value, expected, rtol=0, atol=PARITY)


def test_int8_graph_is_close_and_smaller(onnx_results):
    case = onnx_results["cases"]["bert-seq-after_cls"]
    got = torch.tensor(onnx_results["out"]["bert-seq-after_cls/model_quantized.onnx"]["logits"])
    want, _ = _reference(case)
    assert (got - want["logits"]).abs().max() < 0.1  # approximate by design: the accuracy is measured in docs
    assert (case["folder"] / "model_quantized.onnx").stat().st_size < (
        case["folder"] / "model.onnx"
    ).stat().st_size


def test_language_models_are_refused_for_onnx(tmp_path):
    wrapper = _cases()["gpt2-lm"]["wrapper"]
    with pytest.raises(ValueError, match="language model"):
        wrapper.export_onnx(tmp_path / "lm")
    assert not (tmp_path / "lm").exists()
