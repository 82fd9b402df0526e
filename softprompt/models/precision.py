"""The frozen backbone's precision: bf16 (cast once, heads kept fp32) or an int8 backbone for CPU inference.

Only ``model.base_model`` changes precision. A forward hook registered once on it casts its
floating outputs back to fp32, so every head (the model's own and each prompt's copy) runs in fp32
on fp32 inputs.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from softprompt.models import backbone
from softprompt.models.quantize import is_quantized, quantize_linear_int8

__all__ = ["cast_backbone", "is_quantized", "quantize_backbone", "to_float32"]


def to_float32(output: Any) -> Any:
    """Cast a backbone output's floating tensors (and tuples of them) to fp32 in place; returns it."""
    if not hasattr(output, "items"):
        return output
    for key, value in list(output.items()):
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dtype != torch.float32:
            output[key] = value.float()
        elif isinstance(value, tuple) and all(isinstance(v, torch.Tensor) for v in value):
            output[key] = tuple(v.float() if v.is_floating_point() else v for v in value)
    return output


def _outputs_to_float32(module: nn.Module, args: Any, output: Any) -> Any:
    return to_float32(output)


def cast_backbone(
    model: nn.Module, dtype: torch.dtype, hook: RemovableHandle | None
) -> RemovableHandle | None:
    """Hold ``model.base_model`` in ``dtype``; returns the fp32-output hook (``None`` back in fp32).

    Raises:
        ValueError: ``dtype`` is not a floating dtype, or the backbone was quantized to int8.
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"cast_backbone needs a floating torch.dtype, got {dtype!r}")
    base = model.base_model
    if is_quantized(base):
        raise ValueError("this backbone was quantized to int8; load a fresh model to cast it")
    device, _ = backbone.model_device_dtype(model)
    if dtype == torch.bfloat16 and device.type == "cpu" and not backbone.cpu_has_fast_bf16():
        warnings.warn(
            "this CPU has no native bf16 (no AVX-512 BF16/AMX): bf16 matmuls are emulated and much slower "
            "than fp32 here; leave bf16 off on this machine",
            UserWarning,
            stacklevel=3,
        )
    base.to(dtype)
    if dtype == torch.float32:
        if hook is not None:
            hook.remove()
        return None
    return hook or base.register_forward_hook(_outputs_to_float32)


def quantize_backbone(model: nn.Module) -> None:
    """Quantize ``model.base_model``'s linear layers to int8 (once; see :mod:`softprompt.models.quantize`)."""
    if not is_quantized(model.base_model):
        quantize_linear_int8(model.base_model)
