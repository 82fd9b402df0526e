"""Run one benchmark setup in a fresh interpreter and read that child's own peak resident memory.

``os.wait4`` returns the rusage of the one child waited for, so setups run one after another never
share a high-water mark (``RUSAGE_CHILDREN`` would give the largest of them all).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ChildRun", "peak_rss_mib", "run_child", "tail"]


@dataclass(frozen=True)
class ChildRun:
    """How a child process ended: its exit code, peak RSS (MiB) and wall time (s, imports included)."""

    returncode: int
    peak_rss_mib: float
    wall_seconds: float


def peak_rss_mib() -> float:
    """This process's own peak resident memory so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def run_child(cmd: list[str], log_file: Path) -> ChildRun:
    """Run ``cmd`` with stdout and stderr to ``log_file``, offline (HF_HUB_OFFLINE unless set)."""
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    start = time.perf_counter()
    with open(log_file, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    peak = usage.ru_maxrss / 2**20 if sys.platform == "darwin" else usage.ru_maxrss / 1024  # bytes / KiB
    return ChildRun(os.waitstatus_to_exitcode(status), peak, wall)


def tail(log_file: Path, lines: int = 30) -> str:
    """The last lines of a child's log, for the error message of a failed setup."""
    return "".join(log_file.read_text(errors="replace").splitlines(keepends=True)[-lines:])
