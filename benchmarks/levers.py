"""What each speed lever of the wrapper buys, alone and together, in one process.

    python benchmarks/levers.py --model $M                       # IMDb prediction at 512, SICK training steps
    python benchmarks/levers.py --model $M --rounds 1 --predict-texts 8 --train-steps 2   # a smoke test

The levers are the wrapper's two switches (the trim is on everywhere, oneDNN where measured faster, AMD with AVX-512:
``softprompt.models.onednn.MEASURED_FASTER``; the table marks this machine's default):

- ``trim_last_layer``: the last layer computes only the position a [CLS] head reads
  (:mod:`softprompt.models.first_token`);
- ``onednn_linear``: the frozen fp32 linear layers run as prepacked oneDNN GEMMs on the CPU
  (:mod:`softprompt.models.onednn`).

Each of the four settings predicts the same IMDb test reviews at the chapter's length 512 (MiniLM, a
20-token prompt) and runs the same prompt-tuning steps on SICK pairs (batch 8, max length 128);
settings alternate round by round, so drift on a noisy machine hits all of them alike, and the
median of the rounds is reported, with each setting's largest logit difference from the
whole-model MKL setting. The GEMM peak of the same run (``gemm_peak.py``) is printed alongside.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
import transformers
from gemm_peak import gemm_peaks
from report import finish
from workloads import WORKLOADS, inputs, load_subset

from softprompt.utils.cpu import cpu_vendor

__all__ = ["SETTINGS", "main"]

# name -> (trim_last_layer, onednn_linear)
SETTINGS = {
    "whole model, torch BLAS": (False, False),
    "last layer trimmed": (True, False),
    "oneDNN packed linears": (False, True),
    "both levers": (True, True),
}


def default_setting() -> str:
    """The setting a wrapper starts with on this machine: trimmed, and oneDNN where measured faster."""
    from softprompt.models.onednn import onednn_default

    return "both levers" if onednn_default() else "last layer trimmed"


def _wrapper(model_dir: str, num_labels: int) -> tuple[Any, Any]:
    from softprompt import SoftPromptConfig, SoftPromptWrapper

    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=num_labels, ignore_mismatched_sizes=True
    )  # a new head for each task
    return SoftPromptWrapper(
        model, SoftPromptConfig(num_virtual_tokens=20, seed=0), tokenizer=tokenizer
    ), tokenizer


def _set(wrapper: Any, setting: str) -> None:
    wrapper.trim_last_layer, wrapper.onednn_linear = SETTINGS[setting]


def measure_predict(model_dir: str, data: str, texts: int, rounds: int, max_length: int) -> dict[str, Any]:
    from softprompt import predict_logits

    wrapper, tokenizer = _wrapper(model_dir, 2)
    _, test = load_subset(WORKLOADS["imdb"], data, 0, texts, 42)
    rows = inputs(test)
    seconds: dict[str, list[float]] = {s: [] for s in SETTINGS}
    logits: dict[str, torch.Tensor] = {}
    for _ in range(rounds + 1):  # the first round warms up (packing, allocator) and is not counted
        for setting in SETTINGS:
            _set(wrapper, setting)
            start = time.perf_counter()
            logits[setting] = predict_logits(wrapper, tokenizer, rows, batch_size=32, max_length=max_length)
            seconds[setting].append(time.perf_counter() - start)
    reference = logits["whole model, torch BLAS"]
    return {
        s: {
            "texts_per_s": texts / statistics.median(v[1:] or v),
            "max_abs_logit_diff": float((logits[s] - reference).abs().max()),
        }
        for s, v in seconds.items()
    }


def measure_train(model_dir: str, data: str, steps: int, rounds: int, max_length: int) -> dict[str, Any]:
    spec = WORKLOADS["sick"]
    wrapper, tokenizer = _wrapper(model_dir, spec.num_labels)
    train, _ = load_subset(spec, data, 8 * steps, 0, 42)
    room = wrapper.max_input_length(max_length)
    batches = []
    for i in range(0, 8 * steps, 8):
        part = train.select(range(i, i + 8))
        batch = tokenizer(list(part["text"]), list(part["text_pair"]), truncation=True, max_length=room,
                          padding=True, return_tensors="pt")  # fmt: skip
        batch["labels"] = torch.tensor(part["label"])
        batches.append(batch)
    params = [p for p in wrapper.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    wrapper.train()
    seconds: dict[str, list[float]] = {s: [] for s in SETTINGS}
    for _ in range(rounds + 1):
        for setting in SETTINGS:
            _set(wrapper, setting)
            start = time.perf_counter()
            for batch in batches:
                wrapper(**batch).loss.backward()
                optimizer.step()
                optimizer.zero_grad()
            seconds[setting].append(time.perf_counter() - start)
    return {s: {"steps_per_s": steps / statistics.median(v[1:] or v)} for s, v in seconds.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a BERT-family model folder (MiniLM in docs/benchmarks.md)")
    p.add_argument("--predict-texts", type=int, default=200, help="IMDb test reviews per round")
    p.add_argument("--train-steps", type=int, default=16, help="SICK training steps (batch 8) per round")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds per setting (after one warm-up)")
    p.add_argument("--imdb", default=str(WORKLOADS["imdb"].default_data), help="IMDb parquet folder")
    p.add_argument("--sick", default=str(WORKLOADS["sick"].default_data), help="SICK parquet folder")
    p.add_argument("--imdb-length", type=int, default=512, help="prediction max length (the chapter's)")
    p.add_argument("--sick-length", type=int, default=128, help="training max length")
    p.add_argument("--gemm-seconds", type=float, default=1.0, help="per shape in the GEMM peak; 0: skip")
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args(argv)
    transformers.logging.set_verbosity_error()
    config = transformers.AutoConfig.from_pretrained(args.model)
    result: dict[str, Any] = {
        "model": args.model,
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_vendor": cpu_vendor(),
        "default_here": default_setting(),
    }
    if args.gemm_seconds > 0:
        result["gemm"] = gemm_peaks(config.hidden_size, config.intermediate_size, seconds=args.gemm_seconds)
    result["predict_imdb_512"] = measure_predict(
        args.model, args.imdb, args.predict_texts, args.rounds, args.imdb_length
    )
    result["train_sick_128"] = measure_train(
        args.model, args.sick, args.train_steps, args.rounds, args.sick_length
    )
    base_p = result["predict_imdb_512"]["whole model, torch BLAS"]["texts_per_s"]
    base_t = result["train_sick_128"]["whole model, torch BLAS"]["steps_per_s"]
    print(
        "| setting | IMDb predict texts/s | vs whole/BLAS | max logit diff | SICK train steps/s | vs whole/BLAS |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for s in SETTINGS:
        pr, tr = result["predict_imdb_512"][s], result["train_sick_128"][s]
        name = f"{s} (the default here)" if s == result["default_here"] else s
        print(f"| {name} | {pr['texts_per_s']:.2f} | {pr['texts_per_s'] / base_p:.2f}x | {pr['max_abs_logit_diff']:.1e} "
              f"| {tr['steps_per_s']:.2f} | {tr['steps_per_s'] / base_t:.2f}x |")  # fmt: skip
    finish(result, args.out, f"; this machine's default: {result['default_here']}")


if __name__ == "__main__":
    main()
