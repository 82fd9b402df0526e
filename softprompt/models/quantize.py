"""An int8 backbone for CPU inference: the frozen backbone's linear layers quantized dynamically.

In prompt tuning the backbone never changes, so for serving on a CPU without native bf16 its
``nn.Linear`` layers (about two thirds of an encoder's time, docs/benchmarks.md) can run as int8:
weights quantized once, per output channel (``torch.qint8``); activations quantized per batch on
the fly; products accumulated in int32 (PyTorch's dynamic quantization, the fbgemm/x86 engine). Embeddings, LayerNorms, attention and the task heads stay fp32, and so do the prompts.

This is an *approximation*: logits move slightly and a borderline prediction can flip, so it is
opt-in, inference-only and measured (accuracy beside fp32 in docs/benchmarks.md). The quantized
model cannot be trained or cast; load a fresh backbone for that.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

__all__ = ["int8_candidates", "is_quantized", "quantize_linear_int8"]


def _dynamic_quantization() -> tuple[type[nn.Module], object, object]:
    """PyTorch's dynamic-int8 Linear, the converting function and a per-channel qconfig, or a clear error."""
    with warnings.catch_warnings():  # torch marks torch.ao.quantization deprecated (moving to torchao)
        warnings.simplefilter("ignore")
        try:
            from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
        except ImportError as err:  # pragma: no cover - depends on the torch build
            raise RuntimeError(
                f"int8 backbones need PyTorch's dynamic quantization (torch.ao.quantization), "
                f"which this torch {torch.__version__} does not provide"
            ) from err
    return DynamicLinear, quantize_dynamic, per_channel_dynamic_qconfig


def int8_candidates(module: nn.Module) -> list[str]:
    """Names (in ``module.named_modules()``) of the linear layers :func:`quantize_linear_int8` converts.

    Every ``nn.Linear`` except down-projections (``in_features > out_features``), found by shape.
    """
    return [
        name
        for name, m in module.named_modules()
        if isinstance(m, nn.Linear) and m.in_features <= m.out_features
    ]


def is_quantized(module: nn.Module) -> bool:
    """Whether ``module`` holds any dynamic-int8 linear layer."""
    dynamic_linear, _, _ = _dynamic_quantization()
    return any(isinstance(m, dynamic_linear) for m in module.modules())


def quantize_linear_int8(module: nn.Module) -> int:
    """Replace the ``nn.Linear`` layers inside ``module`` (but down-projections) by dynamic-int8 ones, in place.

    CPU only; see :func:`int8_candidates` for which layers.

    Args:
        module: The frozen backbone (``model.base_model``), in fp32 on the CPU.

    Returns:
        How many linear layers were converted.

    Raises:
        ValueError: ``module`` is not on the CPU or not fp32, or has no linear layer.
        RuntimeError: this torch build has no dynamic quantization or no quantized CPU engine.

    Examples:
        >>> quantize_linear_int8(model.base_model)  # doctest: +SKIP
        31
    """
    params = list(module.parameters())
    if any(p.device.type != "cpu" for p in params):
        raise ValueError("an int8 backbone runs on the CPU only; move the model to the CPU first")
    if any(p.is_floating_point() and p.dtype != torch.float32 for p in params):
        raise ValueError("quantize an fp32 backbone (this one was cast to another dtype)")
    names = int8_candidates(module)
    if not names:
        raise ValueError(
            f"{type(module).__name__} has no nn.Linear layer to quantize (down-projections stay fp32)"
        )
    engines = torch.backends.quantized.supported_engines
    if not any(e in engines for e in ("x86", "fbgemm", "qnnpack", "onednn")):
        raise RuntimeError(f"this torch build has no quantized CPU engine (supported: {engines})")
    _, quantize_dynamic, per_channel = _dynamic_quantization()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices from torch.ao, not the user's concern here
        quantize_dynamic(module, dict.fromkeys(names, per_channel), dtype=torch.qint8, inplace=True)
    return len(names)
