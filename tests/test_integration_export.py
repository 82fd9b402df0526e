"""Integration: a prompt trained on SICK entailment with the real MiniLM, exported with ``softprompt export --format
onnx``, gives the run's test accuracy to the last digit when the folder is loaded by ``transformers`` alone in a
process where softprompt cannot be imported, the wrapper's class for every one of the 2,000 pairs, and ONNX
Runtime logits within 1e-4 of the wrapper's on real weights."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas
import pytest
import torch
import transformers

from softprompt import SoftPromptWrapper
from softprompt.cli import main
from tests.test_export import RUNNER
from tests.test_integration_minilm import MODEL_DIR, SICK_DIR, _sick_or_skip

pytestmark = pytest.mark.slow

CHILD = textwrap.dedent(
    """
    import json, runpy, sys
    runpy.run_path(sys.argv[1])  # installs the softprompt import blocker, as for the other export tests
    import torch, transformers, pandas
    try:
        import softprompt
    except ImportError:
        pass
    else:
        raise SystemExit("softprompt importable")
    folder, data = sys.argv[2], sys.argv[3]
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()
    test = pandas.read_parquet(data)
    names = []
    with torch.no_grad():
        for i in range(0, len(test), 64):
            rows = test.iloc[i : i + 64]
            enc = tok(list(rows.sentence_a), list(rows.sentence_b), padding=True, truncation=True, max_length=64,
                      return_tensors="pt")
            names += [model.config.id2label[int(k)] for k in model(**enc).logits.argmax(-1)]
    correct = sum(a == b for a, b in zip(names, test.label))
    import onnxruntime
    session = onnxruntime.InferenceSession(folder + "/model.onnx", providers=["CPUExecutionProvider"])
    head = test.iloc[:64]
    enc = tok(list(head.sentence_a), list(head.sentence_b), padding=True, truncation=True, max_length=64,
              return_tensors="np")
    onnx_logits = session.run(["logits"], {i.name: enc[i.name] for i in session.get_inputs()})[0].tolist()
    json.dump({"predicted": names, "correct": correct, "total": len(test), "onnx_logits": onnx_logits},
              open(sys.argv[4], "w"))
    """
)


def test_sick_prompt_exported_reproduces_accuracy_without_softprompt(tmp_path, capsys):
    _sick_or_skip()
    run = tmp_path / "run"
    flags = ["--model", MODEL_DIR, "--data", str(SICK_DIR), "--text-column", "sentence_a", "--text-pair-column",
             "sentence_b", "--label-column", "label", "--train-size", "800", "--eval-size", "2000", "--epochs", "1",
             "--max-length", "64", "--seed", "1", "--output-dir", str(run)]  # fmt: skip
    assert main(["train", *flags]) == 0
    accuracy = json.loads((run / "results.json").read_text())["eval_accuracy"]
    out = tmp_path / "exported"
    prompt = run / "prompt.safetensors"
    assert main(["export", str(prompt), "--model", MODEL_DIR, "--output", str(out), "--format", "onnx"]) == 0
    capsys.readouterr()
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    result = tmp_path / "result.json"
    env = {**os.environ, "PYTHONPATH": "", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), str(RUNNER), str(out), str(Path(SICK_DIR) / "test.parquet"), str(result)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(result.read_text())
    assert got["total"] == 2000
    assert got["correct"] / got["total"] == accuracy  # the run's figure, to the last digit
    test = pandas.read_parquet(Path(SICK_DIR) / "test.parquet")
    tok = transformers.AutoTokenizer.from_pretrained(MODEL_DIR)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(MODEL_DIR, num_labels=3)
    wrapper = SoftPromptWrapper.from_prompt(model, prompt, tokenizer=tok).eval()
    pairs = list(zip(test.sentence_a, test.sentence_b))
    assert got["predicted"] == [p.label_name for p in wrapper.predict(pairs, max_length=64)]
    with torch.no_grad():
        head = test.iloc[:64]
        logits = wrapper(
            **wrapper.tokenize(list(head.sentence_a), list(head.sentence_b), max_length=64)
        ).logits
    torch.testing.assert_close(
        torch.tensor(got["onnx_logits"]), logits / wrapper.slot().temperature, rtol=0, atol=1e-4
    )
