"""Frozen fp32 linear layers as prepacked oneDNN GEMMs on the CPU.

PyTorch runs an fp32 ``nn.Linear`` on x86 CPUs through its BLAS (MKL), which on some CPUs uses a
fraction of the vector units: on a 2-core AMD Zen 5 (AVX-512), MKL's sgemm reached ~200 GFLOP/s where
oneDNN's, on a weight reordered once into its blocked layout, reached ~480 (docs/benchmarks.md). A
prompt-tuned backbone never changes, so its weights can be reordered once and reused for every batch
of training and prediction. Both compute in fp32 (no reduced-precision accumulation); results
differ from MKL's only in summation order (~1e-7 relative). Not every CPU gains: on an AVX2-only Zen 3,
and on an Intel Xeon with AVX-512 (where MKL uses AVX-512 itself), the packed GEMMs made prompt training
slower than MKL, so they are on by default only on the CPU kinds where they were measured faster
(:func:`onednn_default`).

:func:`packed_linears` is a context manager: inside it, every ``torch.nn.functional.linear`` call
whose weight is a frozen (``requires_grad=False``) fp32 CPU tensor runs as oneDNN's prepacked GEMM, and
so does any fp32 CPU weight while gradients are off (a fine-tuned model predicting under ``inference_mode``).
The input may require a gradient (prompt tuning): its backward, ``dX = dY W``, is a oneDNN GEMM that
reads ``W`` itself, transposed (within ~3 % of a prepacked copy's speed, and no second copy to hold).
Everything else (a trainable weight, bf16 or int8 layers, CUDA, autocast, ``torch.compile`` tracing)
runs as before.

Packed copies are cached per weight (the memory of the backbone's linear weights once over) and
rebuilt when the weight changes (its version, storage, dtype or shape, or one of 64 sampled values,
which catches writes through ``.data`` that bump no version); an entry goes when its weight is
freed, or all at once with :func:`clear_cache`. The first use in a process checks the oneDNN result
against ``F.linear`` on a small product; where the ops are missing or disagree, nothing is packed
(and a warning says why).

Examples:
    >>> with packed_linears():  # doctest: +SKIP
    ...     logits = model(**batch).logits
"""

from __future__ import annotations

import contextlib
import threading
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from softprompt.utils.cpu import measured_default

__all__ = [
    "ENV_SWITCH",
    "MEASURED_FASTER",
    "PackedLinearMode",
    "clear_cache",
    "onednn_default",
    "onednn_unavailable",
    "packed_linears",
]

BATCH_HINT = 1024  # rows the packed layout is tuned for (any row count runs)
# (CPU vendor, torch.backends.cpu.get_cpu_capability()) pairs on which the packed GEMMs were measured faster
# than torch's BLAS (docs/benchmarks.md): two 2-core AMD EPYC AVX-512 machines, GEMM 465-493 vs ~205 GFLOP/s and
# 225 vs 198, prediction and prompt training faster end to end. Not on an AVX2-only AMD EPYC (Zen 3): slower in
# three runs (prediction 0.88-0.97x, prompt training 0.67-0.82x the bare model, benchmarks/levers.py); nor on an
# AVX-512 Intel Xeon with AMX, where MKL runs its own AVX-512 kernels (GEMM 355-377 vs oneDNN 334-374): level in
# prediction (0.99-1.01x), slower in prompt training (0.89-0.95x) in three runs. There, and on any CPU kind not
# measured, the bare arithmetic stays.
MEASURED_FASTER = (("AuthenticAMD", "AVX512"),)
ENV_SWITCH = (
    "SOFTPROMPT_ONEDNN"  # "1" / "0": on / off whatever the CPU (after measuring it: benchmarks/levers.py)
)
_CHECKED: dict[str, str | None] = {}  # "reason" -> why not available (None: available), once per process
_LOCK = threading.Lock()
_OPEN = threading.local()  # .mode: a packed_linears() is open in this thread


def onednn_default() -> bool:
    """Whether the packed GEMMs are on by default here: on a CPU kind they were measured faster on.

    ``SOFTPROMPT_ONEDNN=1`` or ``=0`` decides instead. A wrapper's ``onednn_linear`` and ``predict_logits``
    on a fine-tuned model start from this; :func:`packed_linears` itself packs wherever it is opened.

    Returns:
        ``True`` where the CPU's vendor and ``torch.backends.cpu.get_cpu_capability()`` are a pair in
        :data:`MEASURED_FASTER` (or the variable says ``1``).

    Examples:
        >>> import os
        >>> from softprompt.utils.cpu import cpu_kind
        >>> onednn_default() == (os.environ.get(ENV_SWITCH, "") == "1" or (os.environ.get(ENV_SWITCH) != "0"
        ...     and cpu_kind() in MEASURED_FASTER))
        True
    """
    return measured_default(ENV_SWITCH, MEASURED_FASTER)


def onednn_unavailable() -> str | None:
    """Why prepacked oneDNN linears cannot be used in this process, or ``None`` when they can.

    Checked once: the ops exist, and on a small product they agree with ``F.linear`` to 1e-4.
    """
    with _LOCK:
        if "reason" not in _CHECKED:
            # the first caller may be inside a bf16 autocast (prediction with bf16=True): the check's own
            # products are fp32 whatever the caller has open, or its comparison fails on dtypes
            with torch.autocast("cpu", enabled=False):
                _CHECKED["reason"] = _check()
        return _CHECKED["reason"]


def _check() -> str | None:
    if not torch.backends.mkldnn.is_available():
        return "this torch build has no oneDNN (mkldnn)"
    ops = getattr(torch.ops, "mkldnn", None)
    if not all(hasattr(ops, name) for name in ("_linear_pointwise", "_reorder_linear_weight")):
        return "this torch has no torch.ops.mkldnn._linear_pointwise"
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(9, 48, generator=generator)  # (rows, in)
    weight = torch.randn(40, 48, generator=generator)  # (out, in)
    bias = torch.randn(40, generator=generator)
    try:
        packed = _pack(weight)
        got = _run(x, packed, bias)
        grad = _run(got, weight.t(), None)  # the backward's product, dY W
    except RuntimeError as err:
        return f"oneDNN's packed linear failed here: {err}"
    if not torch.allclose(got, F.linear(x, weight, bias), rtol=1e-4, atol=1e-4) or not torch.allclose(
        grad, got @ weight, rtol=1e-4, atol=1e-3
    ):
        return "oneDNN's packed linear disagrees with torch.nn.functional.linear on this machine"
    return None


def _pack(weight: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach(), BATCH_HINT)


def _run(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


@dataclass
class _Packed:
    """A weight's packed copy and the state of the weight it was made from."""

    key: tuple[int, int, torch.dtype, tuple[int, ...]]  # version, storage address, dtype, shape
    sample: torch.Tensor  # a few of its values: a write that bumps no version (``.data``) changes them
    forward: torch.Tensor  # W, reordered


_CACHE: dict[int, _Packed] = {}  # id(weight) -> its packed copy; removed when the weight is freed
SAMPLE = 64  # values compared on every call, spread over the whole weight


def _key(weight: torch.Tensor) -> tuple[int, int, torch.dtype, tuple[int, ...]]:
    return (weight._version, weight.data_ptr(), weight.dtype, tuple(weight.shape))


def _sample(weight: torch.Tensor) -> torch.Tensor:
    """About :data:`SAMPLE` of the weight's values, strided over all of it (a view: nothing copied)."""
    flat = weight.detach().reshape(-1)
    return flat[:: max(1, flat.numel() // SAMPLE)]


def _packed(weight: torch.Tensor) -> _Packed:
    ident = id(weight)
    entry = _CACHE.get(ident)
    key = _key(weight)
    sample = _sample(weight)
    if entry is None or entry.key != key or not torch.equal(entry.sample, sample):
        if entry is None:
            weakref.finalize(weight, _CACHE.pop, ident, None)
        entry = _CACHE[ident] = _Packed(key, sample.clone(), _pack(weight))
    return entry


def clear_cache() -> int:
    """Drop every packed copy (each is freed once no running forward holds it); returns how many.

    Copies are rebuilt on the next packed call; use it to give the memory back after a job.
    """
    with _LOCK:
        count = len(_CACHE)
        _CACHE.clear()
    return count


class _PackedLinear(torch.autograd.Function):
    """``y = x W^T + b`` on packed ``W``; backward ``dx = dy W`` on ``W`` itself (no weight gradient)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.weight = weight  # the parameter itself, for the backward
        return _run(x, _packed(weight).forward, bias)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        # W^T as a plain weight (in, out): oneDNN reads the transposed view in place
        return _run(grad.contiguous(), ctx.weight.t(), None), None, None


def _frozen_fp32_cpu(tensor: torch.Tensor | None) -> bool:
    """An fp32 CPU tensor that no gradient reaches here: frozen, or any weight while gradients are off.

    A fine-tuned model's weights are trainable, but under ``torch.inference_mode``/``no_grad`` (prediction)
    nothing flows back to them, so they pack too; the cache key (version, storage, sampled values) rebuilds
    the packed copy after an optimizer step changed them in place.
    """
    if tensor is None:
        return True
    frozen = not tensor.requires_grad or not torch.is_grad_enabled()
    return frozen and tensor.dtype == torch.float32 and tensor.device.type == "cpu"


class PackedLinearMode(TorchFunctionMode):
    """Routes ``F.linear`` with a frozen fp32 CPU weight to oneDNN's prepacked GEMM (see the module docstring)."""

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        # under torch.compile (the mode was opened outside the compiled call) Dynamo traces plain F.linear:
        # inductor packs weights itself, and cannot lower a packed call on a weight it was handed as an input
        if func is F.linear and not torch.compiler.is_compiling():
            x, weight = args[0], args[1]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            if (
                x.dtype == torch.float32
                and x.device.type == "cpu"
                and weight.dim() == 2
                and _frozen_fp32_cpu(weight)
                and _frozen_fp32_cpu(bias)
                and not torch.is_autocast_enabled("cpu")
            ):
                shape = x.shape  # (..., in)
                y = _PackedLinear.apply(x.reshape(-1, shape[-1]), weight, bias)  # (rows, out)
                return y.reshape(*shape[:-1], y.shape[-1])
        return func(*args, **kwargs)


@contextlib.contextmanager
def packed_linears(enabled: bool = True) -> Iterator[None]:
    """While open, frozen fp32 CPU linear layers run as prepacked oneDNN GEMMs.

    A no-op with ``enabled=False``, where oneDNN is unavailable (see :func:`onednn_unavailable`),
    while ``torch.compile`` traces (inductor packs weights itself), and inside an open one (this thread).
    """
    if not enabled or torch.compiler.is_compiling() or getattr(_OPEN, "mode", False):
        yield
        return
    reason = onednn_unavailable()
    if reason is not None:
        _warn_once(reason)
        yield
        return
    _OPEN.mode = True
    try:
        with PackedLinearMode():
            yield
    finally:
        _OPEN.mode = False


def _warn_once(reason: str) -> None:
    with _LOCK:
        if _CHECKED.get("warned"):
            return
        _CHECKED["warned"] = reason
    warnings.warn(f"linear layers run through torch's default BLAS: {reason}", RuntimeWarning, stacklevel=4)
