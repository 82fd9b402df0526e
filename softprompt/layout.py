"""Where virtual tokens are spliced into a batch: embeddings, masks, segment ids, positions, labels.

All functions take right-padded batches ``(B, T, ...)`` and an insertion index ``at`` (0 for
``prepend``, 1 for ``after_cls``) and return ``(B, T + N, ...)`` tensors.
"""

from __future__ import annotations

import torch

__all__ = ["insert", "insert_position_ids", "keep_rows_index", "remove_virtual"]

IGNORE_INDEX = -100  # what HF losses skip; virtual positions never carry a token label


def insert(x: torch.Tensor, virtual: torch.Tensor, at: int) -> torch.Tensor:
    """Splice ``virtual`` ``(B, N, ...)`` into ``x`` ``(B, T, ...)`` before position ``at``.

    Example:
        >>> insert(torch.tensor([[1, 2, 3]]), torch.tensor([[9, 9]]), 1).tolist()
        [[1, 9, 9, 2, 3]]
    """
    virtual = virtual.to(dtype=x.dtype, device=x.device)
    return torch.cat([x[:, :at], virtual, x[:, at:]], dim=1)  # (B, T + N, ...)


def insert_position_ids(position_ids: torch.Tensor, num_virtual: int, at: int) -> torch.Tensor:
    """Give the virtual tokens the next positions and shift the real tokens after them by ``N``.

    Example:
        >>> insert_position_ids(torch.tensor([[0, 1, 2]]), 2, 1).tolist()
        [[0, 1, 2, 3, 4]]
    """
    start = position_ids[:, at - 1 : at] + 1 if at > 0 else position_ids[:, :1]  # (B, 1)
    offsets = torch.arange(num_virtual, device=position_ids.device, dtype=position_ids.dtype)
    virtual = start + offsets  # (B, N)
    return torch.cat([position_ids[:, :at], virtual, position_ids[:, at:] + num_virtual], dim=1)


def keep_rows_index(lengths: torch.Tensor, total: int, keep: int) -> torch.Tensor:
    """Gather index ``(B, keep)`` that cuts rows longer than ``keep`` but keeps their last real token.

    Row ``b`` of length ``L > keep`` keeps positions ``0 .. keep-2`` and ``L-1`` (the final [SEP]);
    shorter rows keep ``0 .. keep-1`` unchanged (their padding included).

    Example:
        >>> keep_rows_index(torch.tensor([5, 2]), total=5, keep=3).tolist()
        [[0, 1, 4], [0, 1, 2]]
    """
    base = torch.arange(keep, device=lengths.device).expand(lengths.shape[0], keep).clone()  # (B, keep)
    too_long = lengths > keep
    base[too_long, -1] = (lengths[too_long] - 1).clamp(max=total - 1)
    return base


def remove_virtual(x: torch.Tensor, num_virtual: int, at: int) -> torch.Tensor:
    """Inverse of :func:`insert` along dim 1: ``(B, T + N, ...)`` -> ``(B, T, ...)``."""
    return torch.cat([x[:, :at], x[:, at + num_virtual :]], dim=1)
