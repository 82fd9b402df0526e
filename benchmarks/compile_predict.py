"""torch.compile on top of the wrapper's defaults: one fixed batch, then prediction over texts of varying length.

    python benchmarks/compile_predict.py --model $M                      # 120 IMDb reviews at 512 tokens
    python benchmarks/compile_predict.py --model <tiny> --data <tiny imdb> --texts 8 --max-length 40   # smoke

Inductor's ``freezing`` is on (weights become constants it can prepack, which it needs to beat the oneDNN
lever) and shapes are dynamic (each batch has its own length). Prints, and writes with ``--out``: the
fixed batch's time eager and compiled and its first (compiling) call; the prediction's texts/s eager,
compiled on its first pass (compilations included) and on a second pass; the largest logit difference.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
import transformers
from workloads import WORKLOADS, inputs, load_subset

from softprompt.utils.atomic import atomic_write_text

__all__ = ["main"]


def _seconds(call: Any, repeats: int) -> float:
    with torch.inference_mode():
        call()
        call()
        start = time.perf_counter()
        for _ in range(repeats):
            call()
    return (time.perf_counter() - start) / repeats


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import torch._inductor.config as inductor_config

    from softprompt import SoftPromptConfig, SoftPromptWrapper, predict_logits

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a BERT-family model folder (MiniLM in docs/benchmarks.md)")
    p.add_argument("--data", default=str(WORKLOADS["imdb"].default_data), help="IMDb parquet folder")
    p.add_argument("--texts", type=int, default=120)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--repeats", type=int, default=10, help="timed calls of the fixed batch")
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args(argv)
    transformers.logging.set_verbosity_error()
    tokenizer = transformers.AutoTokenizer.from_pretrained(args.model)
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        args.model, num_labels=2, ignore_mismatched_sizes=True
    )
    wrapper = SoftPromptWrapper(
        model, SoftPromptConfig(num_virtual_tokens=20, seed=0), tokenizer=tokenizer
    ).eval()
    _, test = load_subset(WORKLOADS["imdb"], args.data, 0, args.texts, 42)
    texts = inputs(test)
    fixed = wrapper.tokenize(
        texts[:2], max_length=args.max_length, padding="max_length"
    )  # (2, max_length - 20)
    result: dict[str, Any] = {"model": args.model, "texts": args.texts, "max_length": args.max_length,
                              "threads": torch.get_num_threads()}  # fmt: skip
    eager_batch = _seconds(lambda: wrapper(**fixed).logits, args.repeats)
    predict_logits(wrapper, tokenizer, texts[:4], max_length=args.max_length)  # warm-up
    start = time.perf_counter()
    eager = predict_logits(wrapper, tokenizer, texts, max_length=args.max_length)
    eager_predict = time.perf_counter() - start
    torch._dynamo.reset()
    with inductor_config.patch(freezing=True):
        compiled = torch.compile(wrapper, dynamic=True)
        start = time.perf_counter()
        with torch.inference_mode():
            compiled(**fixed)
        first_call = time.perf_counter() - start
        compiled_batch = _seconds(lambda: compiled(**fixed).logits, args.repeats)
        passes = []
        for _ in range(2):
            start = time.perf_counter()
            got = predict_logits(compiled, tokenizer, texts, max_length=args.max_length)
            passes.append(time.perf_counter() - start)
    torch._dynamo.reset()
    result.update({
        "fixed_batch_ms": {"eager": 1e3 * eager_batch, "compiled": 1e3 * compiled_batch, "speedup": eager_batch / compiled_batch},
        "first_compiled_call_s": first_call,
        "predict_texts_per_s": {"eager": args.texts / eager_predict, "compiled_first_pass": args.texts / passes[0],
                                "compiled_second_pass": args.texts / passes[1], "speedup": eager_predict / passes[1]},
        "max_abs_logit_diff": float((got - eager).abs().max()),
    })  # fmt: skip
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
