"""Attention kernels at small head sizes on this CPU: GFLOP/s beside the same run's GEMM peak.

python benchmarks/attention.py --out benchmarks/results/attention.json     # MiniLM's 12 heads of 32, 128-512 tokens
python benchmarks/attention.py --heads 12 --head-size 64 --lengths 512     # bert-base's shape

At 512 tokens about a third of MiniLM's prediction time is ``scaled_dot_product_attention``, and
PyTorch's CPU kernel for it (flash attention) reaches a fraction of the GEMM peak at head size 32:
its blocks of ``q_block x 32 @ 32 x kv_block`` are too thin to keep the vector units busy. This
script times the candidates on the shapes a prompted encoder runs, forward alone (prediction) and
forward plus backward into queries, keys and values (prompt training: the backbone is frozen, the
gradient still flows through every layer's attention to the prompt):

- ``sdpa``: ``F.scaled_dot_product_attention`` with torch's own choice of kernel (what the model runs);
- ``sdpa-math``: the same call held to the unfused ``MATH`` backend;
- ``bmm-N``: the scores as one batched GEMM (``baddbmm`` adds the padding mask), an in-place softmax
  and a second batched GEMM, over N (batch x head) rows at a time, so that N score matrices of
  ``T x T`` floats stay in cache (``bmm-all``: every row at once).

Each candidate's output is compared with a float64 reference; the rates count the attention's
matmul FLOPs only (``4 B H T^2 d`` forward, 3x that forward plus backward), as the roofline does.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from gemm_peak import gemm_peaks

from softprompt.utils.atomic import atomic_write_text

__all__ = ["bmm_attention", "candidates", "measure", "padding_mask"]

Attention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def padding_mask(batch: int, length: int, *, seed: int = 0) -> torch.Tensor:
    """An additive float mask ``(B, 1, 1, T)``: 0 for real tokens, the dtype's minimum for padding.

    Row lengths are drawn from the last eighth of ``length``, like a batch of length-sorted texts.
    """
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(length - length // 8, length + 1, (batch,), generator=g)
    keep = torch.arange(length)[None, :] < lengths[:, None]  # (B, T)
    mask = torch.zeros(batch, 1, 1, length)
    return mask.masked_fill(~keep[:, None, None, :], torch.finfo(mask.dtype).min)


def bmm_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None,
    rows: int | None = None,
) -> torch.Tensor:
    """Softmax attention as two batched GEMMs, ``rows`` (batch x head) score matrices at a time.

    Args:
        query, key, value: ``(B, heads, T, d)``.
        mask: Additive ``(B, 1, 1, T)`` or ``None``.
        rows: How many of the ``B * heads`` score matrices ``(T, T)`` to hold at once; ``None``: all.

    Returns:
        ``(B, heads, T, d)``, as ``F.scaled_dot_product_attention`` returns.
    """
    b, h, t, d = query.shape
    q = query.reshape(b * h, t, d)  # (BH, T, d)
    k_t = key.reshape(b * h, t, d).transpose(1, 2)  # (BH, d, T)
    v = value.reshape(b * h, t, d)
    bias = (
        mask.expand(b, h, 1, t).reshape(b * h, 1, t)  # (BH, 1, T), broadcast over query rows
        if mask is not None
        else torch.zeros((), dtype=query.dtype)
    )
    scale = 1.0 / math.sqrt(d)
    step = b * h if rows is None else rows
    outs = []
    for start in range(0, b * h, step):
        part = slice(start, start + step)
        scores = torch.baddbmm(
            bias[part] if bias.dim() else bias, q[part], k_t[part], alpha=scale
        )  # (rows, T, T)
        weights = torch.softmax(scores, dim=-1)
        outs.append(torch.bmm(weights, v[part]))  # (rows, T, d)
    return torch.cat(outs).view(b, h, t, d)


def candidates(batch_heads: int, dtype: torch.dtype = torch.float32) -> dict[str, Attention]:
    """The kernels to compare, by name (``bmm-N`` for a few N up to ``batch_heads``; for bf16 inputs also
    ``sdpa-fp32``, SDPA on fp32 copies with the output cast back, as ``softprompt.models.bf16_cpu`` trains)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=m)

    def sdpa_math(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
        with sdpa_kernel([SDPBackend.MATH]):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=m)

    def sdpa_fp32(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
        mask = None if m is None else m.float()
        return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask).to(q.dtype)

    out: dict[str, Attention] = {"sdpa": sdpa, "sdpa-math": sdpa_math}
    if dtype != torch.float32:
        out["sdpa-fp32"] = sdpa_fp32
    for rows in sorted({1, 4, 16, batch_heads}):
        if rows <= batch_heads:
            name = "bmm-all" if rows == batch_heads else f"bmm-{rows}"
            out[name] = lambda q, k, v, m, rows=rows: bmm_attention(q, k, v, m, rows)
    return out


def _time(fn: Callable[[], Any], seconds: float) -> float:
    """Median seconds per call of ``fn`` over about ``seconds`` (after two warm-up calls)."""
    fn()
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 3:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(
    batch: int,
    heads: int,
    length: int,
    head_size: int,
    *,
    seconds: float = 2.0,
    masked: bool = True,
    dtype: torch.dtype = torch.float32,
) -> dict[str, Any]:
    """Each candidate's forward and forward+backward GFLOP/s and max error on one shape, inputs in ``dtype``."""
    g = torch.Generator().manual_seed(1)
    shape = (batch, heads, length, head_size)
    q, k, v = (torch.randn(shape, generator=g).to(dtype) for _ in range(3))
    mask = padding_mask(batch, length) if masked else None
    ref = F.scaled_dot_product_attention(
        q.double(), k.double(), v.double(), attn_mask=None if mask is None else mask.double().clamp(min=-1e30)
    )
    if mask is not None:
        mask = mask.to(dtype).clamp(min=torch.finfo(dtype).min)  # fp32's minimum overflows bf16 to -inf
    flops = 4 * batch * heads * length * length * head_size
    grad = torch.randn(shape, generator=g).to(dtype)
    rows: dict[str, Any] = {}
    for name, fn in candidates(batch * heads, dtype).items():
        with torch.inference_mode():
            err = (fn(q, k, v, mask).double() - ref).abs().max().item()
            forward = _time(lambda fn=fn: fn(q, k, v, mask), seconds)
        qg, kg, vg = (x.clone().requires_grad_(True) for x in (q, k, v))

        both = _time(lambda fn=fn, qg=qg, kg=kg, vg=vg: fn(qg, kg, vg, mask).backward(grad), seconds)
        rows[name] = {
            "max_abs_error": err,
            "forward_ms": round(forward * 1e3, 3),
            "forward_gflops": round(flops / forward / 1e9, 1),
            "train_ms": round(both * 1e3, 3),
            "train_gflops": round(3 * flops / both / 1e9, 1),
        }
    return {
        "batch": batch,
        "heads": heads,
        "length": length,
        "head_size": head_size,
        "masked": masked,
        "dtype": str(dtype).removeprefix("torch."),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8, help="texts per batch (default %(default)s)")
    p.add_argument("--heads", type=int, default=12, help="attention heads (MiniLM: %(default)s)")
    p.add_argument("--head-size", type=int, default=32, help="per head (MiniLM: %(default)s)")
    p.add_argument(
        "--lengths", type=int, nargs="+", default=[128, 256, 512], help="tokens (default %(default)s)"
    )
    p.add_argument("--seconds", type=float, default=1.5, help="per candidate and shape (default %(default)s)")
    p.add_argument(
        "--no-mask", action="store_true", help="no padding mask (torch may then pick other kernels)"
    )
    p.add_argument(
        "--gemm-seconds", type=float, default=1.0, help="per shape in the GEMM peak (default %(default)s)"
    )
    p.add_argument(
        "--dtype", choices=["fp32", "bf16"], default="fp32", help="of the inputs (default %(default)s)"
    )
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args(argv)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    result: dict[str, Any] = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "gemm_peak": gemm_peaks(seconds=args.gemm_seconds),
        "shapes": [],
    }
    peak = result["gemm_peak"].get(f"{args.dtype}_peak_gflops") or result["gemm_peak"]["fp32_peak_gflops"]
    result["dtype"] = args.dtype
    print(
        f"cpu {result['gemm_peak']['cpu_capability']}, {result['threads']} threads, inputs {args.dtype}, "
        f"GEMM peak {peak} GFLOP/s (% peak below: of this dtype's, where native)"
    )
    for length in args.lengths:
        shape = measure(
            args.batch, args.heads, length, args.head_size, seconds=args.seconds, masked=not args.no_mask,
            dtype=dtype,
        )  # fmt: skip
        result["shapes"].append(shape)
        print(f"\nB={args.batch} heads={args.heads} T={length} d={args.head_size}")
        print(
            f"{'kernel':<10} {'fwd ms':>8} {'GFLOP/s':>8} {'% peak':>7} {'fwd+bwd ms':>11} {'GFLOP/s':>8} {'max err':>9}"
        )
        for name, row in shape["rows"].items():
            print(
                f"{name:<10} {row['forward_ms']:>8.2f} {row['forward_gflops']:>8.1f} "
                f"{100 * row['forward_gflops'] / peak:>6.1f}% {row['train_ms']:>11.2f} "
                f"{row['train_gflops']:>8.1f} {row['max_abs_error']:>9.1e}"
            )
    if args.out:
        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
