"""A bf16 backbone on the CPU: attention's backward, slower in bf16 than in fp32 there, runs in fp32.

With native bf16 (AVX-512 BF16, AMX) a bf16 matmul is several times faster than an fp32 one, but not every
kernel has a fast bf16 path. On a 2-core Intel Xeon with AMX (torch 2.13, MiniLM's 12 heads of 32, batch 8),
the backward of ``scaled_dot_product_attention`` (PyTorch's CPU flash kernel) was slow in bf16: forward plus
backward 16.7 ms on bf16 inputs against 4.9 on fp32 copies of them at 128 tokens, 68.1 against 59.3 at 512
(``benchmarks/attention.py --dtype bf16``, docs/benchmarks.md), while bf16's forward alone is the faster. Prompt tuning runs it in
every layer (the gradient flows through the frozen backbone to the prompt), so a bf16 backbone trained
*slower* than an fp32 one on short texts there (SICK pairs: 96 against 69 ms a step).

:func:`bf16_cpu_kernels` is a context manager: inside it, attention on bf16 CPU tensors that need a gradient,
over at most :data:`MAX_KEYS` keys, computes in fp32 and hands back bf16. A whole training step of MiniLM
(batch 8, bf16 backbone, ``benchmarks/bf16_attention.py``) measured 1.76x faster at 128 tokens, 1.17x at 256,
1.07x at 384, and 0.98x at 512, hence the limit. It is *more* precise than the bf16 kernel it replaces (fp32
arithmetic, one rounding to bf16 at the end); prediction (no gradient) keeps the bf16 kernel, whose forward is
the faster one, and every other op runs as before. On by default only where measured faster
(:func:`fp32_attention_default`): on that Xeon and on an AMD EPYC with AVX-512 BF16 (a training step 1.40-1.48x
faster at 128 tokens, 1.04-1.10x at 384).

Examples:
    >>> with bf16_cpu_kernels():  # doctest: +SKIP
    ...     loss = model(**batch).loss
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from softprompt.utils.cpu import measured_default

__all__ = [
    "ENV_SWITCH",
    "MAX_KEYS",
    "MEASURED_FASTER",
    "Bf16CpuMode",
    "bf16_cpu_kernels",
    "fp32_attention_default",
    "fp32_attention_wanted",
]

# (CPU vendor, torch.backends.cpu.get_cpu_capability()) pairs where the fp32 attention was measured faster in
# bf16 prompt training: an Intel Xeon with AMX (module docstring) and an AMD EPYC with AVX-512 BF16 (family 26,
# two runs of benchmarks/bf16_attention.py: 1.40-1.48x at 128 tokens, 1.04-1.10x at 384, 0.97-0.99x at 512).
# AVX2 CPUs have no native bf16 (a bf16 backbone is the slow path there whatever attention does).
MEASURED_FASTER = (("GenuineIntel", "AVX512"), ("AuthenticAMD", "AVX512"))
MAX_KEYS = 384  # keys (prompt included) up to which fp32 was faster: 1.07x at 384, 0.98x at 512
ENV_SWITCH = "SOFTPROMPT_FP32_ATTENTION"  # "1" / "0": on / off whatever the CPU

_OPEN = threading.local()  # .mode: a bf16_cpu_kernels() is open in this thread
_ATTENTION_TENSORS = 3  # query, key, value: the positional arguments upcast


def _bf16_cpu(tensor: Any) -> bool:
    return isinstance(tensor, torch.Tensor) and tensor.dtype == torch.bfloat16 and tensor.device.type == "cpu"


def _attention_in_fp32(func: Any, args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``scaled_dot_product_attention`` on fp32 copies of bf16 CPU inputs that need a gradient, else ``None``."""
    qkv = args[:_ATTENTION_TENSORS]
    if len(qkv) < _ATTENTION_TENSORS or not all(_bf16_cpu(t) for t in qkv):
        return None
    if not torch.is_grad_enabled() or not any(t.requires_grad for t in qkv) or qkv[1].shape[-2] > MAX_KEYS:
        return None
    rest = list(args[_ATTENTION_TENSORS:])
    if rest and _bf16_cpu(rest[0]):  # attn_mask given by position
        rest[0] = rest[0].float()
    mask = kwargs.get("attn_mask")
    if _bf16_cpu(mask):
        kwargs = {**kwargs, "attn_mask": mask.float()}
    out = func(*(t.float() for t in qkv), *rest, **kwargs)  # (batch, heads, queries, head size), fp32
    return out.to(torch.bfloat16)


def fp32_attention_default() -> bool:
    """Whether a bf16 CPU backbone's attention trains in fp32 here: on a CPU kind where that was measured faster.

    ``SOFTPROMPT_FP32_ATTENTION=1`` or ``=0`` decides instead.

    Examples:
        >>> import os
        >>> from softprompt.utils.cpu import cpu_kind
        >>> fp32_attention_default() == (os.environ.get(ENV_SWITCH, "") == "1" or (os.environ.get(ENV_SWITCH) != "0"
        ...     and cpu_kind() in MEASURED_FASTER))
        True
    """
    return measured_default(ENV_SWITCH, MEASURED_FASTER)


def fp32_attention_wanted(device: torch.device, backbone_dtype: torch.dtype) -> bool:
    """Whether a forward pass of a backbone held in ``backbone_dtype`` on ``device`` should open the mode now.

    A bf16 CPU backbone, gradients on (prediction keeps bf16's kernel and pays for no mode), on a CPU kind where
    the fp32 attention was measured faster (:func:`fp32_attention_default`).

    Examples:
        >>> fp32_attention_wanted(torch.device("cpu"), torch.float32)
        False
    """
    return (
        device.type == "cpu"
        and backbone_dtype == torch.bfloat16
        and torch.is_grad_enabled()
        and fp32_attention_default()
    )


class Bf16CpuMode(TorchFunctionMode):
    """Runs attention on bf16 CPU tensors that need a gradient in fp32 (up to :data:`MAX_KEYS` keys)."""

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if not torch.compiler.is_compiling():
            out = _attention_in_fp32(func, args, kwargs) if func is F.scaled_dot_product_attention else None
            if out is not None:
                return out
        return func(*args, **kwargs)


@contextlib.contextmanager
def bf16_cpu_kernels(enabled: bool = True) -> Iterator[None]:
    """While open, attention on bf16 CPU tensors that need a gradient computes in fp32 and returns bf16.

    A no-op with ``enabled=False``, while ``torch.compile`` traces, and inside an open one (this thread).
    Open it only where a backbone is held in bf16 on the CPU: the mode sees every torch call in its block.
    """
    if not enabled or torch.compiler.is_compiling() or getattr(_OPEN, "mode", False):
        yield
        return
    _OPEN.mode = True
    try:
        with Bf16CpuMode():
            yield
    finally:
        _OPEN.mode = False
