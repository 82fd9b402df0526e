"""Which prompts running calls use: removing or replacing a prompt waits for them, so a call keeps its prompt.

Kept beside the registry, keyed by it (a lock held inside an ``nn.Module`` would stop ``deepcopy`` and pickling).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from torch import nn

__all__ = ["changing", "holding"]

_IN_USE: weakref.WeakKeyDictionary[nn.Module, tuple[threading.Condition, Counter[str]]] = (
    weakref.WeakKeyDictionary()
)
_LOCK = threading.Lock()


def _in_use(registry: nn.Module) -> tuple[threading.Condition, Counter[str]]:
    with _LOCK:
        if registry not in _IN_USE:
            _IN_USE[registry] = (threading.Condition(), Counter())
        return _IN_USE[registry]


@contextlib.contextmanager
def holding(registry: nn.Module, names: Iterable[str], check: Callable[[str], object]) -> Iterator[None]:
    """While open, ``names`` are in use on ``registry``; ``check(name)`` runs for each first (under the lock).

    Examples:
        >>> with holding(wrapper, ["sst2"], wrapper.slot):  # doctest: +SKIP
        ...     pass
    """
    held = list(dict.fromkeys(names))
    cond, count = _in_use(registry)
    with cond:
        for name in held:
            check(name)
        count.update(held)
    try:
        yield
    finally:
        with cond:
            count.subtract(held)
            cond.notify_all()


@contextlib.contextmanager
def changing(registry: nn.Module, name: str) -> Iterator[None]:
    """Open once no call uses ``name``; no call starts using it until closed (remove or replace it inside).

    Examples:
        >>> with changing(wrapper, "old"):  # doctest: +SKIP
        ...     del wrapper.prompts["old"]
    """
    cond, count = _in_use(registry)
    with cond:
        cond.wait_for(lambda: count[name] <= 0)
        yield
