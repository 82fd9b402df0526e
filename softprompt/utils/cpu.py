"""The CPU's vendor, which math libraries dispatch on as well as on its instruction set.

``torch.backends.cpu.get_cpu_capability()`` says which vector instructions PyTorch's own kernels use, but
not which kernels its BLAS picks: MKL's fp32 GEMM on an AMD CPU with AVX-512 runs at about half of
oneDNN's, and on an Intel one level with it (docs/benchmarks.md). A speed default that depends on the
GEMM kernel therefore needs the vendor too.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

__all__ = ["KNOWN_VENDORS", "cpu_vendor"]

CPUINFO = Path("/proc/cpuinfo")
READ_LIMIT = 64 * 1024  # bytes: the first processor's block is ~1.5 KB; the file can be ~1 MB on big machines
KNOWN_VENDORS = ("GenuineIntel", "AuthenticAMD")  # the x86 vendor ids ``cpuid`` reports


@functools.cache
def cpu_vendor() -> str:
    """The x86 vendor id of this CPU (``"GenuineIntel"``, ``"AuthenticAMD"``), or ``""`` where unknown.

    Read from the first 64 KiB of ``/proc/cpuinfo`` (Linux) or ``platform.processor()`` (Windows names the
    vendor there); ARM CPUs, other systems and unreadable files give ``""``. Cached per process.

    Examples:
        >>> cpu_vendor() in KNOWN_VENDORS + ("",)
        True
    """
    try:
        with CPUINFO.open("rb") as handle:
            text = handle.read(READ_LIMIT).decode("ascii", errors="replace")
    except OSError:  # not Linux, or no /proc
        text = platform.processor()
    return next((vendor for vendor in KNOWN_VENDORS if vendor in text), "")
