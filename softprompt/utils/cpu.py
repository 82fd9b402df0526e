"""The CPU's kind (vendor and vector capability), and speed defaults keyed on the kinds they were measured on.

``torch.backends.cpu.get_cpu_capability()`` says which vector instructions PyTorch's own kernels use, but
not which kernels its BLAS picks: MKL's fp32 GEMM on an AMD CPU with AVX-512 runs at about half of
oneDNN's, and on an Intel one level with it (docs/benchmarks.md). A speed default that depends on the
GEMM kernel therefore needs the vendor too: :func:`measured_default` turns a lever on only on the
(vendor, capability) pairs it was measured faster on, with an environment variable to decide instead.
"""

from __future__ import annotations

import functools
import os
import platform
from collections.abc import Collection
from pathlib import Path

import torch

__all__ = ["KNOWN_VENDORS", "cpu_kind", "cpu_vendor", "measured_default"]

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


def cpu_kind() -> tuple[str, str]:
    """``(cpu_vendor(), torch.backends.cpu.get_cpu_capability())``, e.g. ``("AuthenticAMD", "AVX512")``.

    Examples:
        >>> cpu_kind()[1] == torch.backends.cpu.get_cpu_capability()
        True
    """
    return cpu_vendor(), str(torch.backends.cpu.get_cpu_capability())


def measured_default(switch: str, measured_faster: Collection[tuple[str, str]]) -> bool:
    """Whether a speed lever is on here: where :func:`cpu_kind` is one of the kinds it was measured faster on.

    Args:
        switch: An environment variable that decides instead when it says ``"1"`` (on) or ``"0"`` (off).
        measured_faster: ``(vendor, capability)`` pairs; any other kind, unmeasured ones included, is off.

    Examples:
        >>> measured_default("SOFTPROMPT_EXAMPLE_SWITCH", [cpu_kind()])
        True
        >>> measured_default("SOFTPROMPT_EXAMPLE_SWITCH", [])
        False
    """
    value = os.environ.get(switch, "").strip()
    if value in ("0", "1"):
        return value == "1"
    return cpu_kind() in measured_faster
