"""A bf16 backbone's prompt-tuning step on the CPU: attention in bf16 or in fp32, beside the fp32 backbone.

    python benchmarks/bf16_attention.py --model $M --out benchmarks/results/bf16-attention.json
    python benchmarks/bf16_attention.py --model $M --lengths 128 --rounds 1 --steps 1 --gemm-seconds 0  # smoke

``softprompt.models.bf16_cpu`` runs a bf16 CPU backbone's attention in fp32 while a gradient is wanted, up to
``MAX_KEYS`` keys, on the CPU kinds where that was measured faster. This script is that measurement: one
MiniLM wrapper (20-token prompt, batch 8 of random token ids filling each length), forward and backward of
a training step, in three settings that take turns round by round:

- ``fp32``: the backbone in fp32 (the bare arithmetic);
- ``bf16, bf16 attention``: ``cast_backbone(torch.bfloat16)``, PyTorch's kernels throughout
  (``SOFTPROMPT_FP32_ATTENTION=0``);
- ``bf16, fp32 attention``: the same with the attention upcast (``SOFTPROMPT_FP32_ATTENTION=1``; below
  ``MAX_KEYS`` keys only, so at longer lengths it equals the row above).

It prints the median milliseconds a step per setting and length, the ratios, each bf16 setting's prompt
gradient's relative distance from fp32's, and the GEMM peak of the run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import transformers
from gemm_peak import gemm_peaks

from softprompt import SoftPromptConfig, SoftPromptWrapper
from softprompt.models.bf16_cpu import ENV_SWITCH, MAX_KEYS
from softprompt.utils.atomic import atomic_write_text
from softprompt.utils.cpu import cpu_vendor

__all__ = ["SETTINGS", "main"]

SETTINGS = {  # name -> (backbone dtype, SOFTPROMPT_FP32_ATTENTION)
    "fp32": (torch.float32, "0"),
    "bf16, bf16 attention": (torch.bfloat16, "0"),
    "bf16, fp32 attention": (torch.bfloat16, "1"),
}
PROMPT = 20


def _wrappers(model_dir: str) -> tuple[dict[torch.dtype, Any], Any]:
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    wrappers = {}
    for dtype in (torch.float32, torch.bfloat16):
        torch.manual_seed(0)
        model = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
        wrapper = SoftPromptWrapper(
            model, SoftPromptConfig(num_virtual_tokens=PROMPT, seed=0), tokenizer=tokenizer
        )
        wrappers[dtype] = wrapper.cast_backbone(dtype).train()
    return wrappers, tokenizer


def _step(wrapper: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    prompt = wrapper.prompts["default"].prompt
    prompt.grad = None
    wrapper(**batch).loss.backward()
    return prompt.grad.clone()  # (PROMPT, hidden)


def measure(model_dir: str, lengths: list[int], steps: int, rounds: int) -> dict[str, Any]:
    wrappers, tokenizer = _wrappers(model_dir)
    generator = torch.Generator().manual_seed(0)
    before = os.environ.get(ENV_SWITCH)  # the caller's setting, given back at the end
    out: dict[str, Any] = {}
    for length in lengths:
        vocab = len(tokenizer)  # ordinary word pieces: above the special tokens (1,000 in BERT's vocabulary)
        ids = torch.randint(
            min(1000, vocab // 2), vocab, (8, length - PROMPT), generator=generator
        )  # (batch, text)
        ids[:, 0] = tokenizer.cls_token_id
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.tensor([0, 1] * 4)}
        seconds: dict[str, list[float]] = {s: [] for s in SETTINGS}
        grads: dict[str, torch.Tensor] = {}
        names = list(SETTINGS)
        for turn in range(rounds + 1):  # the first round warms up and is not counted
            for name in names[turn % len(names) :] + names[: turn % len(names)]:  # each leads in turn
                dtype, switch = SETTINGS[name]
                os.environ[ENV_SWITCH] = switch
                start = time.perf_counter()
                for _ in range(steps):
                    grads[name] = _step(wrappers[dtype], batch)
                seconds[name].append((time.perf_counter() - start) / steps)
        reference = grads["fp32"]
        out[str(length)] = {
            name: {
                "ms_per_step": 1000 * statistics.median(v[1:]),
                "prompt_grad_rel_diff_vs_fp32": float((grads[name] - reference).norm() / reference.norm()),
            }
            for name, v in seconds.items()
        }
    if before is None:
        os.environ.pop(ENV_SWITCH, None)
    else:
        os.environ[ENV_SWITCH] = before
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a BERT-family model folder (MiniLM in docs/benchmarks.md)")
    p.add_argument(
        "--lengths",
        type=int,
        nargs="+",
        default=[128, 192, 256, 320, 384, 512],
        help="tokens, prompt included",
    )
    p.add_argument("--steps", type=int, default=4, help="training steps per setting and round")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds (after one warm-up)")
    p.add_argument("--gemm-seconds", type=float, default=1.0, help="per shape in the GEMM peak; 0: skip")
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args(argv)
    transformers.logging.set_verbosity_error()
    result: dict[str, Any] = {
        "model": args.model,
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_vendor": cpu_vendor(),
        "max_keys": MAX_KEYS,
    }
    if args.gemm_seconds > 0:
        config = transformers.AutoConfig.from_pretrained(args.model)
        result["gemm"] = gemm_peaks(config.hidden_size, config.intermediate_size, seconds=args.gemm_seconds)
    result["steps"] = measure(args.model, args.lengths, args.steps, args.rounds)
    print("| tokens | fp32 ms | bf16 ms | bf16 + fp32 attention ms | bf16 vs fp32 | bf16 + fp32 attn vs fp32 "
          "| fp32 attn vs bf16 attn | grad diff bf16 | grad diff bf16 + fp32 attn |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for length, row in result["steps"].items():
        f32, b16, mixed = (row[s]["ms_per_step"] for s in SETTINGS)
        print(f"| {length} | {f32:.1f} | {b16:.1f} | {mixed:.1f} | {f32 / b16:.2f}x | {f32 / mixed:.2f}x | {b16 / mixed:.2f}x "
              f"| {row['bf16, bf16 attention']['prompt_grad_rel_diff_vs_fp32']:.1e} "
              f"| {row['bf16, fp32 attention']['prompt_grad_rel_diff_vs_fp32']:.1e} |")  # fmt: skip
    print(f"CPU: {result['cpu_vendor'] or 'vendor unknown'}, capability {result['cpu_capability']}, "
          f"{result['threads']} threads; fp32 attention up to {MAX_KEYS} keys")  # fmt: skip
    if "gemm" in result:
        gemm = result["gemm"]
        print(f"GEMM peak: fp32 {gemm['fp32_peak_gflops']}, bf16 {gemm.get('bf16_peak_gflops')} GFLOP/s")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
