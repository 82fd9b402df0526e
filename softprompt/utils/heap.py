"""Large CPU tensors reuse the process heap instead of fresh pages from the kernel at every step.

glibc's ``malloc`` serves each request above its mmap threshold (32 MiB at most) with a fresh ``mmap`` and
unmaps it on ``free``. A training step on the CPU allocates its big activations anew each step (PyTorch
keeps no CPU cache), so every step page-faults hundreds of megabytes in again, and the kernel zeroes each
page. On a 2-core AMD EPYC (Zen 5), a fine-tuning step of MiniLM on 8 x 512 tokens (training mode: attention
dropout keeps attention off the fused kernel, so its scores are materialised) took 4.20 s in bf16 autocast
and faulted 1.1 million pages in; with the heap kept, 2.12 s and 41 thousand (1.98x; fp32 1.43x; prediction
at 512 tokens 1.15x; ``benchmarks/heap.py``, docs/benchmarks.md).

:func:`retained_heap` is a context manager: inside it glibc serves large requests from the heap and never
gives its top back (``mallopt(M_MMAP_MAX, 0)``, ``mallopt(M_TRIM_THRESHOLD, -1)``), so the second step
reuses the first step's pages. On leaving, ``malloc_trim(0)`` returns the free pages to the system, and glibc
keeps the settings its own adaptation reaches in any process that has freed a 32 MiB block (requests from
32 MiB up mapped, the heap's top trimmed above 64 MiB; once set, glibc stops adapting them). The price is
memory, and it is not bounded: PyTorch asks for its large blocks 64-byte aligned, each request a little larger
than the block of the same size it freed, so a freed block is reused only once it has merged with its free
neighbours, and until then the heap grows. Peak resident memory rose 3.2 -> 3.9 GB in the step above, and a
fine-tuning run (batch 32, up to 512 tokens, length-grouped) held 19.6 GB after 250 steps, where six steps of its
longest shape had held 14.7 GB with the heap kept and 11.1 GB without.

So prediction keeps the heap where measured faster (its batches are capped at 1,024 tokens: peak memory was
unchanged, 651 against 652 MB), and training only where the user asks (:func:`retained_heap_for_training`:
``SOFTPROMPT_RETAIN_HEAP=1``), with the free pages given back every few steps. Prompt tuning, whose frozen
backbone runs without dropout on the fused kernel, measured 0.97x and 1.08x in two runs.

Process-wide, so it is entered once however many threads or nested calls ask (the last to leave restores),
and it never runs where it cannot be right: off on systems without glibc, and off where the user set
``glibc.malloc`` tunables in ``GLIBC_TUNABLES`` (their settings stand). Prediction's default: on only on the
CPU kinds where it was measured faster (:func:`retained_heap_default`); ``SOFTPROMPT_RETAIN_HEAP=1`` / ``0``
decides instead, for training too.

Examples:
    >>> with retained_heap():  # doctest: +SKIP
    ...     trainer.train()
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import threading
from collections.abc import Iterator

from softprompt.utils.cpu import measured_default

__all__ = [
    "ENV_SWITCH",
    "MEASURED_FASTER",
    "heap_unavailable",
    "release_free_pages",
    "retained_heap",
    "retained_heap_default",
    "retained_heap_for_training",
]

# (CPU vendor, capability) pairs where prediction was measured faster with the heap kept, its peak memory
# unchanged: the 2-core AMD EPYC Zen 5 (benchmarks/heap.py, two runs: 1.10x and 1.15x). The page faults it
# saves are the kernel's on any CPU, but a lever is on only where measured.
MEASURED_FASTER = (("AuthenticAMD", "AVX512"),)
ENV_SWITCH = "SOFTPROMPT_RETAIN_HEAP"  # "1" / "0": on / off whatever the CPU

# glibc's <malloc.h> parameters, and the values left on leaving (malloc/malloc.c): the mmap threshold's
# adaptive maximum on 64-bit systems, twice it for the trim threshold (as the adaptation sets it), the default
# count of mappings
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
RESTORED_MMAP_THRESHOLD = 32 * 2**20
RESTORED_TRIM_THRESHOLD = 2 * RESTORED_MMAP_THRESHOLD
DEFAULT_MMAP_MAX = 65536

_LOCK = threading.Lock()
_STATE = {"open": 0}  # how many retained_heap() blocks are open, in all threads


def retained_heap_default() -> bool:
    """Whether :func:`retained_heap` is on by default here: on the CPU kinds it was measured faster on.

    Examples:
        >>> from softprompt.utils.cpu import cpu_kind
        >>> retained_heap_default() == (os.environ.get(ENV_SWITCH) == "1" or (os.environ.get(ENV_SWITCH) != "0"
        ...     and cpu_kind() in MEASURED_FASTER))
        True
    """
    return measured_default(ENV_SWITCH, MEASURED_FASTER)


def retained_heap_for_training() -> bool:
    """Whether training keeps the heap: only where the user asks, ``SOFTPROMPT_RETAIN_HEAP=1``.

    Measured faster (a fine-tuning step 1.43-2.08x), but its memory is not bounded (module docstring).

    Examples:
        >>> retained_heap_for_training() == (os.environ.get(ENV_SWITCH, "").strip() == "1")
        True
    """
    return os.environ.get(ENV_SWITCH, "").strip() == "1"


def heap_unavailable() -> str | None:
    """Why :func:`retained_heap` does nothing in this process, or ``None`` when it works.

    Examples:
        >>> reason = heap_unavailable()
        >>> reason is None or isinstance(reason, str)
        True
    """
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES sets glibc.malloc tunables: the user's allocator settings stand"
    if _libc() is None:
        return "this C library is not glibc (mallopt's parameters are glibc's)"
    return None


@functools.cache  # once per process: every prediction call asks
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
    except OSError:  # Windows: no process-wide C library handle
        return None
    if not all(hasattr(libc, name) for name in ("gnu_get_libc_version", "mallopt", "malloc_trim")):
        return None
    return libc


def release_free_pages() -> bool:
    """Give the heap's free pages back to the system now (``malloc_trim(0)``); ``False`` without glibc.

    Inside :func:`retained_heap`, blocks freed by batches of another length fragment the heap, and the
    process keeps every page it ever held; a trim now and then returns the free ones (the next step faults
    in again what it needs).

    Examples:
        >>> release_free_pages() in (True, False)
        True
    """
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


@contextlib.contextmanager
def retained_heap(enabled: bool = True) -> Iterator[None]:
    """While open, glibc keeps freed large blocks in the process heap for the next request.

    A no-op with ``enabled=False`` and where :func:`heap_unavailable` gives a reason. Nested and concurrent
    blocks share one setting: the first in sets it, the last out returns the free pages (``malloc_trim(0)``)
    and leaves glibc as its adaptation leaves a process that has freed a 32 MiB block (module docstring).

    Args:
        enabled: Whether to keep the heap (e.g. :func:`retained_heap_default`).
    """
    libc = _libc() if enabled and heap_unavailable() is None else None
    if libc is None:
        yield
        return
    with _LOCK:
        if _STATE["open"] == 0:
            libc.mallopt(M_MMAP_MAX, 0)  # large requests from the heap, not fresh mappings
            libc.mallopt(M_TRIM_THRESHOLD, -1)  # -1: never give the heap's top back (man mallopt)
        _STATE["open"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _STATE["open"] -= 1
            if _STATE["open"] == 0:
                libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                libc.mallopt(M_MMAP_THRESHOLD, RESTORED_MMAP_THRESHOLD)
                libc.mallopt(M_TRIM_THRESHOLD, RESTORED_TRIM_THRESHOLD)
                release_free_pages()  # the kept free pages back to the system
