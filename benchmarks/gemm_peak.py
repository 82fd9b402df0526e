"""This machine's matmul peak (GFLOP/s), fp32 and bf16, to read benchmark figures against.

python benchmarks/gemm_peak.py            # square 2048 and MiniLM's FFN shapes, torch's threads
"""

import json
import time

import torch


def peak(m: int, k: int, n: int, dtype: torch.dtype, seconds: float = 2.0) -> float:
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    for _ in range(3):
        a @ b  # warm-up
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        runs += 1
    return 2 * m * k * n * runs / (time.perf_counter() - start) / 1e9


def main() -> None:
    shapes = {"square-2048": (2048, 2048, 2048), "ffn-up (4096x384x1536)": (4096, 384, 1536),
              "ffn-down (4096x1536x384)": (4096, 1536, 384)}  # fmt: skip
    out = {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "native_bf16": bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)()),
        "fp32_gflops": {name: round(peak(*s, torch.float32), 1) for name, s in shapes.items()},
    }
    if out["native_bf16"]:  # emulated bf16 is ~100x slower: not worth the wait
        out["bf16_gflops"] = {name: round(peak(*s, torch.bfloat16), 1) for name, s in shapes.items()}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
