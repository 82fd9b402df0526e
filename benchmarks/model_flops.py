"""Model FLOPs of a BERT-shaped encoder from its config, and model FLOP utilisation (MFU).

Counted: the matrix products, at 2 FLOPs a multiply-add. Per layer and per token, the four attention
projections and the two FFN products hold ``4 H^2 + 2 H I`` weights (``H`` = ``hidden_size``, ``I`` =
``intermediate_size``), and attention's ``Q K^T`` and ``P V`` cost ``2 n H`` each for a sequence of ``n``
tokens. So a sequence of ``n`` real tokens (virtual tokens included, padding excluded) costs, forward::

    F_linear(n) = 2 * L * (4 H^2 + 2 H I) * n       # 2 x the matmul parameters, per token
    F_attn(n)   = 4 * L * n^2 * H                   # 4 x seq x hidden per layer, per token

Left out (each well under 1 % of a 6-layer model at 100+ tokens): embeddings (lookups), the pooler and
the classifier (once per sequence), LayerNorm, softmax, GELU, dropout.

Training with the backbone frozen (every setup here: prompt tuning) needs the gradient of every
activation (the prompt sits at the input) but no gradient of a frozen weight. A linear layer's backward
is then one product (``dX = dY W^T``), as much as its forward; attention's products have no weights,
both operands are activations, so their backward is two products each, twice the forward::

    T(n) = F_linear(n) + F_attn(n)          # forward
         + F_linear(n) + 2 * F_attn(n)      # backward: activation gradients only
         = 2 F_linear(n) + 3 F_attn(n)      # ~2x forward (full fine-tuning would be ~3x: weight grads too)

MFU = model FLOPs of the work done / seconds / the GEMM peak measured on the same machine in the same
run (:func:`gemm_peak.gemm_peaks`). Padding and recomputation are not useful work, so a setup that pads
every text to 512 scores lower than one that does not, for the same arithmetic rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "first_token_forward_flops",
    "forward_flops",
    "forward_parts",
    "mfu",
    "train_flops",
    "workload_flops",
]


def _dims(config: Any) -> tuple[int, int, int]:
    return int(config.num_hidden_layers), int(config.hidden_size), int(config.intermediate_size)


def _parts(config: Any, n: int) -> tuple[int, int]:
    layers, hidden, inter = _dims(config)
    linear = 2 * layers * (4 * hidden * hidden + 2 * hidden * inter) * n
    attention = 4 * layers * n * n * hidden
    return linear, attention


def forward_parts(config: Any, n: int) -> tuple[int, int]:
    """Forward FLOPs of one sequence of ``n`` real tokens, split: ``(F_linear(n), F_attn(n))``."""
    return _parts(config, n)


def forward_flops(config: Any, n: int) -> int:
    """Forward FLOPs of one sequence of ``n`` real tokens: ``F_linear(n) + F_attn(n)``."""
    linear, attention = _parts(config, n)
    return linear + attention


def train_flops(config: Any, n: int) -> int:
    """Forward and backward FLOPs of one sequence with the backbone frozen: ``2 F_linear(n) + 3 F_attn(n)``."""
    linear, attention = _parts(config, n)
    return 2 * linear + 3 * attention


def first_token_forward_flops(config: Any, n: int) -> int:
    """Forward FLOPs *executed* when the last layer runs for position 0 alone (``softprompt.models.first_token``).

    The other layers are whole; the last one projects keys and values of all ``n`` tokens, and the
    query, attention, output projection and FFN of one. MFU keeps counting :func:`forward_flops` (the
    work the model's answer stands for); this is what the hardware actually did.
    """
    _, hidden, inter = _dims(config)
    per_layer_linear = 2 * (4 * hidden * hidden + 2 * hidden * inter)  # per token
    whole = forward_flops(config, n) - per_layer_linear * n - 4 * n * n * hidden  # all but the last layer
    last = 2 * (2 * hidden * hidden) * n + per_layer_linear - 2 * (2 * hidden * hidden) + 4 * n * hidden
    return whole + last


def workload_flops(config: Any, lengths: Iterable[int], *, passes: int = 1) -> dict[str, int]:
    """Tokens and model FLOPs (forward, and training) of sequences of these real lengths, seen ``passes`` times."""
    lengths = list(lengths)
    return {
        "sequences": passes * len(lengths),
        "tokens": passes * sum(lengths),
        "forward_flops": passes * sum(forward_flops(config, n) for n in lengths),
        "train_flops": passes * sum(train_flops(config, n) for n in lengths),
    }


def mfu(flops: float, seconds: float, peak_gflops: float | None) -> float | None:
    """Model FLOP utilisation: ``flops / seconds`` as a fraction of ``peak_gflops`` (``None`` without a peak)."""
    if not peak_gflops or seconds <= 0:
        return None
    return flops / seconds / (peak_gflops * 1e9)
