"""What every benchmark driver prints and writes the same way: the GEMM peak line and the JSON results file.

No torch or softprompt at import: drivers that run their setups in child processes import this without
raising their children's peak memory (a child's ``ru_maxrss`` starts from its parent's at fork).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["finish", "gemm_line", "write_json"]


def gemm_line(gemm: dict[str, Any]) -> str:
    """``GEMM peak: fp32 ... GFLOP/s (each shape's rate)`` of a ``gemm_peak.gemm_peaks`` result."""
    return f"GEMM peak: fp32 {gemm['fp32_peak_gflops']} GFLOP/s ({gemm['fp32_gflops']})"


def write_json(path: str | Path, result: dict[str, Any]) -> None:
    """``result`` as indented JSON at ``path`` (its folder made), written atomically."""
    from softprompt.utils.atomic import atomic_write_text  # here: the drivers import no softprompt (above)

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")


def finish(result: dict[str, Any], out: str | Path | None, note: str = "") -> None:
    """A driver's last lines: the CPU kind (and ``note``), the GEMM peak where measured; the JSON to ``out``."""
    print(f"CPU: {result['cpu_vendor'] or 'vendor unknown'}, capability {result['cpu_capability']}{note}")
    if "gemm" in result:
        print(gemm_line(result["gemm"]))
    if out:
        write_json(out, result)
