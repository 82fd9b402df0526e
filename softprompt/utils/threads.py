"""CPU threads: how many the process uses, and whether other work already holds the cores.

PyTorch's CPU kernels run on an OpenMP pool of one thread per core. When other processes keep some of
those cores busy, the pool's threads wait for each other at every barrier (and libgomp *spins* while it
waits), so a run can slow down far more than its share of the cores would suggest. ``--threads`` sets the
pool's size; ``--threads auto`` takes the cores nobody else is running on. Without it, a warning says when
the machine looks oversubscribed.
"""

from __future__ import annotations

import logging
import os
import time

__all__ = ["apply_threads", "available_cores", "busy_threads", "oversubscription_warning", "parse_threads"]

logger = logging.getLogger(__name__)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity; ``os.cpu_count()`` where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def busy_threads() -> int | None:
    """Threads of *other* processes running or ready to run right now (Linux ``/proc/loadavg``), else ``None``.

    Examples:
        >>> n = busy_threads()
        >>> n is None or n >= 0
        True
    """
    samples = []
    for i in range(3):  # a snapshot: the least of three, 10 ms apart, ignores threads that just woke up
        if i:
            time.sleep(0.01)
        try:
            with open("/proc/loadavg", encoding="ascii") as f:
                samples.append(int(f.read().split()[3].split("/")[0]))  # "r/t": runnable entities
        except (OSError, ValueError, IndexError):
            return None
    return max(0, min(samples) - 1)  # this thread, reading the file, is one of them


def parse_threads(value: str | int | None) -> int | str | None:
    """``--threads``: a positive number, ``"auto"``, or ``None`` (keep PyTorch's default).

    Examples:
        >>> parse_threads("2"), parse_threads("auto"), parse_threads(None)
        (2, 'auto', None)
    """
    if value is None or value == "auto":
        return value
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"--threads must be a positive number or 'auto', got {value!r}") from None
    if n < 1:
        raise ValueError(f"--threads must be a positive number or 'auto', got {value!r}")
    return n


def oversubscription_warning(threads: int, cores: int | None = None, busy: int | None = None) -> str | None:
    """A warning when ``threads`` plus the other busy threads exceed the cores, else ``None``.

    Examples:
        >>> oversubscription_warning(2, cores=2, busy=1) is not None, oversubscription_warning(1, cores=2, busy=1)
        (True, None)
    """
    cores = available_cores() if cores is None else cores
    busy = busy_threads() if busy is None else busy
    if busy is None or threads + busy <= cores:
        return None
    free = max(1, cores - busy)
    return (
        f"{busy} thread(s) of other processes are running on this machine's {cores} core(s) and this run uses "
        f"{threads}: its threads will wait for each other at every step, which can make it many times slower. "
        f"Pass --threads {free} (or --threads auto), or stop the other work"
    )


def apply_threads(value: str | int | None) -> int:
    """Set PyTorch's intra-op thread count from ``--threads``; warn when the CPU looks oversubscribed.

    Returns:
        The thread count in use.

    Examples:
        >>> apply_threads(None) >= 1
        True
    """
    import torch

    threads = parse_threads(value)
    if threads == "auto":
        busy = busy_threads() or 0
        threads = max(1, available_cores() - busy)
        logger.info("--threads auto: %d other busy thread(s), using %d thread(s)", busy, threads)
    if isinstance(threads, int):
        torch.set_num_threads(threads)
    elif (message := oversubscription_warning(torch.get_num_threads())) is not None:
        logger.warning(message)
    return torch.get_num_threads()
