"""Which share of the work this process does under ``torchrun``, a barrier between the processes, and its device.

Outside ``torchrun`` the process is rank 0 of 1 and nothing is initialised.

Examples:
    >>> shard = Shard.from_env({})
    >>> shard.rank, shard.world_size, shard.is_main
    (0, 1, True)
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch

__all__ = ["BARRIER_TIMEOUT", "Shard", "barrier", "process_group", "shard_device"]

# a barrier waits for the slowest process's whole share of a long prediction job, not for a quick step
BARRIER_TIMEOUT = datetime.timedelta(days=7)


@dataclass(frozen=True)
class Shard:
    """This process's place among ``world_size`` processes (``torchrun`` sets ``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK``)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    def __post_init__(self) -> None:
        for name in ("rank", "world_size", "local_rank"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if self.world_size < 1 or not 0 <= self.rank < self.world_size or self.local_rank < 0:
            raise ValueError(
                f"rank {self.rank} of world size {self.world_size} (local {self.local_rank}) is not valid"
            )

    @property
    def is_main(self) -> bool:
        """Whether this is the process that writes shared outputs (rank 0)."""
        return self.rank == 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Shard:
        """The shard ``torchrun`` describes in ``env`` (default ``os.environ``); rank 0 of 1 outside it.

        Raises:
            ValueError: a variable that is not a number, or an impossible rank.
        """
        env = os.environ if env is None else env
        try:
            return cls(
                rank=int(env.get("RANK", "0")),
                world_size=int(env.get("WORLD_SIZE", "1")),
                local_rank=int(env.get("LOCAL_RANK", "0")),
            )
        except ValueError as exc:
            raise ValueError(f"RANK, WORLD_SIZE or LOCAL_RANK is not valid ({exc})") from exc


@contextlib.contextmanager
def process_group(shard: Shard) -> Iterator[None]:
    """A gloo process group for barriers while inside, when ``shard.world_size > 1`` (and none is set up
    already); destroyed on leaving. Gloo works on CPUs and beside GPUs alike: only barriers cross it."""
    import torch.distributed as dist

    if shard.world_size == 1 or (dist.is_available() and dist.is_initialized()):
        yield
        return
    if not (dist.is_available() and dist.is_gloo_available()):
        raise RuntimeError("torch.distributed with gloo is needed to share the work across processes")
    dist.init_process_group("gloo", init_method="env://", timeout=BARRIER_TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


def barrier(shard: Shard) -> None:
    """Wait until every process gets here (nothing to wait for in one process)."""
    if shard.world_size > 1:
        import torch.distributed as dist

        dist.barrier()


def shard_device(device: str, shard: Shard) -> torch.device:
    """``--device``: ``cpu``, ``cuda`` (under ``torchrun``: GPU ``LOCAL_RANK``) or ``cuda:N``.

    Raises:
        ValueError: another device name, or CUDA asked for where there is none.

    Examples:
        >>> shard_device("cpu", Shard())
        device(type='cpu')
    """
    try:
        chosen = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"--device {device!r} is not a device: use cpu, cuda or cuda:N") from exc
    if chosen.type == "cpu":
        return chosen
    if chosen.type != "cuda":
        raise ValueError(f"--device {device!r}: only cpu and cuda are supported")
    if not torch.cuda.is_available():
        raise ValueError(f"--device {device!r}: CUDA is not available here; use --device cpu")
    return torch.device("cuda", shard.local_rank if chosen.index is None else chosen.index)
