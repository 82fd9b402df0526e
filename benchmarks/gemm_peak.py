"""This machine's matmul peak (GFLOP/s), fp32 and bf16, to read benchmark figures against (the roofline).

python benchmarks/gemm_peak.py                          # square 2048 and MiniLM's FFN shapes, torch's threads
python benchmarks/gemm_peak.py --hidden 768 --intermediate 3072 --device cuda   # bert-base shapes on a GPU

``prompt_tuning.py`` runs this in the same run as the setups it measures (in a child process, so that
the driver stays small: a child's peak RSS includes its parent's at fork), and divides each setup's
model FLOP rate by the peak of the dtype it computes in (model FLOP utilisation, MFU).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from softprompt.models.onednn import onednn_unavailable
from softprompt.utils.atomic import atomic_write_text
from softprompt.utils.cpu import cpu_vendor

__all__ = ["cpu_bf16_flags", "gemm_peaks", "native_bf16", "peak"]

TOKENS = 4096  # rows of the FFN-shaped products: a large batch's (batch x length) tokens
SQUARE = 2048


def peak(
    m: int,
    k: int,
    n: int,
    dtype: torch.dtype,
    seconds: float = 2.0,
    device: str = "cpu",
    kernel: str = "torch",
) -> float:
    """GFLOP/s of repeated ``(m, k) @ (k, n)`` products in ``dtype`` on ``device`` for about ``seconds``.

    ``kernel="torch"``: ``a @ b`` (on x86 CPUs in fp32, MKL's sgemm); ``"onednn"``: oneDNN's fp32 linear
    on a weight reordered once, as :mod:`softprompt.models.onednn` runs a frozen backbone (CPU, fp32 only).
    """
    a = torch.randn(m, k, dtype=dtype, device=device)
    b = torch.randn(k, n, dtype=dtype, device=device)
    product = lambda: a @ b  # noqa: E731
    if kernel == "onednn":
        packed = torch.ops.mkldnn._reorder_linear_weight(b.t().contiguous(), m)  # weight (n, k)
        product = lambda: torch.ops.mkldnn._linear_pointwise(a, packed, None, "none", [], "")  # noqa: E731
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(3):
        product()  # warm-up
    sync()
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        product()
        runs += 1
        if device.startswith("cuda") and runs % 16:
            continue  # queue a few products before waiting, so launches do not decide the figure
        sync()
    sync()
    return 2 * m * k * n * runs / (time.perf_counter() - start) / 1e9


def cpu_bf16_flags() -> list[str]:
    """The CPU's native bf16 matrix features (``avx512_bf16``, ``amx_bf16``) that this machine has."""
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is not None:
        found = capabilities()
        return sorted(f for f in ("avx512_bf16", "amx_bf16") if found.get(f))
    cpuinfo = Path("/proc/cpuinfo")
    flags = set(cpuinfo.read_text().split()) if cpuinfo.is_file() else set()
    return sorted(flags & {"avx512_bf16", "amx_bf16"})


def native_bf16(device: str = "cpu") -> bool:
    """Whether bf16 matmuls run natively: any CUDA GPU with bf16 support; on a CPU, torch's AVX-512
    kernels plus AVX512_BF16 or AMX. On AVX2 torch emulates bf16 (~75x slower than fp32 here), so never."""
    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    return torch.backends.cpu.get_cpu_capability() == "AVX512" and bool(cpu_bf16_flags())


def gemm_peaks(
    hidden: int = 384,
    intermediate: int = 1536,
    *,
    seconds: float = 2.0,
    device: str = "cpu",
    force_bf16: bool = False,
) -> dict[str, Any]:
    """fp32 (and, where native, bf16) GFLOP/s of a square product and a model's two FFN products.

    ``peak_gflops`` per dtype is the best of the shapes (and, for fp32 on a CPU, of torch's BLAS and
    oneDNN's prepacked kernel): the rate a matmul-bound model could reach on this machine.

    Args:
        hidden, intermediate: The model's ``hidden_size`` and ``intermediate_size`` (MiniLM's by default).
        seconds: Time spent on each shape and dtype.
        device: ``"cpu"`` or a CUDA device.
        force_bf16: Time bf16 even where it is not native (emulated on AVX2: what ``--bf16`` would cost there).
    """
    shapes = {
        f"square-{SQUARE}": (SQUARE, SQUARE, SQUARE),
        f"ffn-up ({TOKENS}x{hidden}x{intermediate})": (TOKENS, hidden, intermediate),
        f"ffn-down ({TOKENS}x{intermediate}x{hidden})": (TOKENS, intermediate, hidden),
    }
    dtypes = {"fp32": torch.float32}
    if native_bf16(device) or force_bf16:
        dtypes["bf16"] = torch.bfloat16
    out: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_vendor": cpu_vendor(),
        "cpu_bf16_flags": cpu_bf16_flags(),
        "threads": torch.get_num_threads(),
        "native_bf16": native_bf16(device),
        "seconds_per_shape": seconds,
    }
    for name, dtype in dtypes.items():
        rates = {shape: round(peak(*dims, dtype, seconds, device), 1) for shape, dims in shapes.items()}
        if name == "fp32" and device == "cpu" and onednn_unavailable() is None:
            # torch's BLAS is not always the machine's best fp32 GEMM (MKL on AMD: ~40 % of oneDNN's)
            rates.update(
                {
                    f"onednn {shape}": round(peak(*dims, dtype, seconds, device, "onednn"), 1)
                    for shape, dims in shapes.items()
                }
            )
        out[f"{name}_gflops"] = rates
        out[f"{name}_peak_gflops"] = max(rates.values())
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=384, help="the model's hidden size (MiniLM: %(default)s)")
    p.add_argument("--intermediate", type=int, default=1536, help="its FFN width (MiniLM: %(default)s)")
    p.add_argument("--seconds", type=float, default=2.0, help="per shape and dtype (default %(default)s)")
    p.add_argument(
        "--device", default="cpu", help="cpu, cuda, or auto: cuda if there is one (default %(default)s)"
    )
    p.add_argument(
        "--force-bf16", action="store_true", help="time bf16 where it is not native too (emulated on AVX2)"
    )
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args(argv)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    peaks = gemm_peaks(
        args.hidden, args.intermediate, seconds=args.seconds, device=device, force_bf16=args.force_bf16
    )
    result = json.dumps(peaks, indent=2)
    print(result)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, result + "\n")


if __name__ == "__main__":
    main()
