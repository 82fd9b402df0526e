"""Where a prompt-tuning step's time goes, operator kind by kind, against the machine's GEMM peak.

    python benchmarks/step_profile.py --model $M --out benchmarks/results/step-profile.json
    python benchmarks/step_profile.py --model $M --lengths 64 --steps 1 --gemm-seconds 0  # smoke

Training MFU (model FLOPs / seconds / the run's fp32 GEMM peak) sits near 50 % on the AVX-512 machines while
the linear layers alone run near the peak. This script says where the rest goes. One MiniLM wrapper at the
library's defaults on the machine in hand (20-token prompt; the levers ``levers.py`` measures, as this CPU's
rule sets them), batch 8 of random word pieces filling each length, a full step: forward, backward, AdamW on
the prompt and head. Per length:

1. the step's median wall time over ``--steps`` steps, after two warm-up steps, without the profiler; its MFU;
2. ``torch.profiler`` over as many steps again: each operator's *self* CPU time (its children excluded)
   summed into kinds (:data:`KINDS`, first match wins; the rest is ``other``), each kind's share of the
   profiled total and, for the two kinds that carry the model's FLOPs, their rate: ``linear`` (the linear
   layers' GEMMs, forward and input gradient: ``2 F_linear``) and ``attention`` (the fused kernel, forward and
   backward: ``3 F_attn``; see ``model_flops.py``). The profiler adds a little time to every operator, so its
   total is above the unprofiled step; shares are the figures to read;
3. the ten operators with the most self time.

The FLOPs are the model's (what MFU counts): with the last layer trimmed to the [CLS] position the linear
layers execute ~14 % fewer, so their rate here is the rate of useful work.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import transformers
from gemm_peak import gemm_peaks
from model_flops import forward_parts

from softprompt import SoftPromptConfig, SoftPromptWrapper
from softprompt.models.onednn import onednn_default
from softprompt.utils.atomic import atomic_write_text
from softprompt.utils.cpu import cpu_vendor

__all__ = ["KINDS", "kind_of", "main"]

PROMPT = 20
BATCH = 8
# (kind, substrings of an operator's name): the first kind with a matching substring takes the operator
KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("optimizer", ("_foreach", "adamw", "optimizer")),
    ("attention", ("scaled_dot_product", "flash_attention", "efficient_attention")),
    ("linear", ("_linear_pointwise", "addmm", "aten::mm", "aten::matmul", "aten::linear", "aten::bmm")),
    ("layer norm", ("layer_norm",)),
    ("gelu", ("gelu",)),
    ("softmax and loss", ("softmax", "nll_loss", "cross_entropy")),
    ("embeddings", ("embedding", "index_select")),
    ("copies and elementwise", ("copy_", "aten::to", "_to_copy", "contiguous", "clone", "aten::add", "aten::mul",
                                "aten::div", "aten::sub", "aten::cat", "fill_", "zero_", "aten::sum", "where",
                                "masked", "aten::tanh", "aten::rsub", "aten::neg", "aten::empty")),
)  # fmt: skip


def kind_of(name: str) -> str:
    """The kind of an operator named ``name`` (``other`` if none of :data:`KINDS` matches).

    Examples:
        >>> kind_of("mkldnn::_linear_pointwise"), kind_of("aten::native_layer_norm_backward"), kind_of("x")
        ('linear', 'layer norm', 'other')
    """
    lowered = name.lower()
    for kind, needles in KINDS:
        if any(needle in lowered for needle in needles):
            return kind
    return "other"


def _wrapper(model_dir: str) -> tuple[Any, Any, torch.optim.Optimizer]:
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    wrapper = SoftPromptWrapper(
        model, SoftPromptConfig(num_virtual_tokens=PROMPT, seed=0), tokenizer=tokenizer
    )
    wrapper.train()
    trainable = [p for p in wrapper.parameters() if p.requires_grad]
    return wrapper, tokenizer, torch.optim.AdamW(trainable, lr=1e-2)


def _step(wrapper: Any, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor]) -> None:
    optimizer.zero_grad(set_to_none=True)
    wrapper(**batch).loss.backward()
    optimizer.step()


def profile_length(
    wrapper: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    length: int,
    steps: int,
    peak: float | None,
) -> dict[str, Any]:
    """One length's unprofiled step time, MFU and profiled breakdown (module docstring)."""
    generator = torch.Generator().manual_seed(length)
    vocab = len(tokenizer)  # ordinary word pieces: above the special tokens (1,000 in BERT's vocabulary)
    ids = torch.randint(
        min(1000, vocab // 2), vocab, (BATCH, length - PROMPT), generator=generator
    )  # (B, text)
    ids[:, 0] = tokenizer.cls_token_id
    batch = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": torch.tensor([0, 1] * (BATCH // 2)),
    }
    for _ in range(2):  # warm-up: packed weights, allocator, first-call dispatch
        _step(wrapper, optimizer, batch)
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        _step(wrapper, optimizer, batch)
        seconds.append(time.perf_counter() - start)
    step_s = statistics.median(seconds)
    linear, attention = forward_parts(wrapper.model.config, length)  # forward FLOPs of one sequence
    flops = {"linear": 2 * linear * BATCH, "attention": 3 * attention * BATCH}
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            _step(wrapper, optimizer, batch)
    ops = [(e.key, e.self_cpu_time_total / 1e6 / steps, e.count // steps) for e in prof.key_averages()]
    profiled = sum(s for _, s, _ in ops)
    kinds: dict[str, dict[str, Any]] = {}
    for name, s, _ in ops:
        entry = kinds.setdefault(kind_of(name), {"seconds": 0.0})
        entry["seconds"] += s
    for kind, entry in kinds.items():
        entry["share"] = entry["seconds"] / profiled if profiled else 0.0
        if kind in flops and entry["seconds"] > 0:
            entry["model_gflops"] = flops[kind] / 1e9
            entry["gflop_per_s"] = flops[kind] / entry["seconds"] / 1e9
            entry["vs_peak"] = entry["gflop_per_s"] / peak if peak else None
    top = sorted(ops, key=lambda op: -op[1])[:10]
    total_flops = sum(flops.values())
    return {
        "tokens_per_sequence": length,
        "batch": BATCH,
        "step_ms": 1e3 * step_s,
        "mfu": total_flops / step_s / (peak * 1e9) if peak else None,
        "profiled_step_ms": 1e3 * profiled,
        "kinds": dict(sorted(kinds.items(), key=lambda kv: -kv[1]["seconds"])),
        "top_ops": [{"op": name, "self_ms": 1e3 * s, "calls": calls} for name, s, calls in top],
    }


def _print(length: str, row: dict[str, Any]) -> None:
    mfu = f"{100 * row['mfu']:.1f} %" if row["mfu"] is not None else "-"
    print(f"\n{length} tokens x batch {row['batch']}: step {row['step_ms']:.1f} ms unprofiled (MFU {mfu}), "
          f"{row['profiled_step_ms']:.1f} ms profiled")  # fmt: skip
    print("| kind | ms | share | model GFLOP | GFLOP/s | vs fp32 peak |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind, entry in row["kinds"].items():
        rate = f"{entry['gflop_per_s']:.0f}" if "gflop_per_s" in entry else "-"
        vs = f"{100 * entry['vs_peak']:.0f} %" if entry.get("vs_peak") is not None else "-"
        work = f"{entry['model_gflops']:.1f}" if "model_gflops" in entry else "-"
        print(
            f"| {kind} | {1e3 * entry['seconds']:.1f} | {100 * entry['share']:.1f} % | {work} | {rate} | {vs} |"
        )
    print("top operators (self ms a step, calls): " + "; ".join(
        f"{op['op']} {op['self_ms']:.1f} ({op['calls']})" for op in row["top_ops"]))  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a BERT-family model folder (MiniLM in docs/benchmarks.md)")
    p.add_argument("--lengths", type=int, nargs="+", default=[128, 512], help="tokens, prompt included")
    p.add_argument("--steps", type=int, default=6, help="steps timed, and steps profiled, per length")
    p.add_argument("--gemm-seconds", type=float, default=1.0, help="per shape in the GEMM peak; 0: skip")
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args(argv)
    if any(length <= PROMPT + 1 for length in args.lengths):
        p.error(f"every length must leave room for text after the {PROMPT} virtual tokens")
    transformers.logging.set_verbosity_error()
    result: dict[str, Any] = {
        "model": args.model,
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_vendor": cpu_vendor(),
        "onednn_default": onednn_default(),
        "torch": torch.__version__,
    }
    config = transformers.AutoConfig.from_pretrained(args.model)
    peak = None
    if args.gemm_seconds > 0:
        result["gemm"] = gemm_peaks(config.hidden_size, config.intermediate_size, seconds=args.gemm_seconds)
        peak = result["gemm"]["fp32_peak_gflops"]
    wrapper, tokenizer, optimizer = _wrapper(args.model)
    result["lengths"] = {
        str(length): profile_length(wrapper, tokenizer, optimizer, length, args.steps, peak)
        for length in args.lengths
    }
    print(f"CPU: {result['cpu_vendor'] or 'vendor unknown'}, capability {result['cpu_capability']}, "
          f"{result['threads']} threads, oneDNN linears {'on' if result['onednn_default'] else 'off'}; "
          f"fp32 GEMM peak {peak if peak else 'not measured'} GFLOP/s")  # fmt: skip
    for length, row in result["lengths"].items():
        _print(length, row)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
