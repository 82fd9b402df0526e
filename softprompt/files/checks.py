"""One validator for prompt files, used when writing *and* when reading: what cannot be saved cannot be loaded.

Every number read from a file is parsed and bounded before anything is allocated from it, every
tensor must be finite float32 within :data:`MAX_ABS_VALUE`, and the labels must fit the head. A file
that fails raises ``ValueError`` naming the file; nothing in a file is ever executed or unpickled.

Examples:
    >>> bounded_int("/tmp/p.safetensors", "num_labels", "3", 1, MAX_NUM_LABELS)
    3
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from softprompt.core.config import SoftPromptConfig
from softprompt.core.task import Task, TaskType

# the tensor names of the file layout (softprompt.files.prompt_file re-exports them)
PROMPT_KEY = "prompt_embeddings"
HEAD_PREFIX = "head."
DEEP_KEY = "deep_prompts"
DEEP_REPARAM_PREFIX = "deep_reparam."
PROMPT_REPARAM_PREFIX = "prompt_reparam."

__all__ = [
    "MAX_ABS_VALUE",
    "MAX_DIM",
    "MAX_LAYERS",
    "MAX_NUM_LABELS",
    "TEMPERATURE_RANGE",
    "base_fingerprint",
    "base_model_mismatch",
    "bounded_int",
    "check_labels",
    "check_task",
    "check_temperature",
    "check_tensors",
    "check_values",
    "fingerprint_mismatch",
]

# A trained prompt or head holds values of order 1 (BERT's embeddings have std ~0.05); 1e4 leaves ample
# room and keeps every product in attention and LayerNorm far from fp32 overflow (a 1e30 did overflow).
MAX_ABS_VALUE = 1e4
# the range calibration can produce (fit_temperature clamps to it); beyond it confidences are all 0.5 or NaN
TEMPERATURE_RANGE = (1e-2, 1e2)
MAX_NUM_LABELS = 100_000
MAX_DIM = 65_536  # embedding and hidden sizes
MAX_LAYERS = 1_024
_FINGERPRINT_ROWS = 64


def bounded_int(where: str, name: str, text: str, low: int, high: int) -> int:
    """``int(text)`` if it is a plain integer in ``[low, high]``; a ``ValueError`` naming the file otherwise."""
    text = str(text).strip()
    if not (text.isdigit() and len(text) <= 12):
        raise ValueError(f"{where}: metadata {name}={text[:40]!r} is not a whole number")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{where}: metadata {name}={value} is outside [{low}, {high}]")
    return value


def check_temperature(where: str, temperature: Any) -> float:
    """A finite temperature within :data:`TEMPERATURE_RANGE`."""
    low, high = TEMPERATURE_RANGE
    try:
        value = float(temperature)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: temperature {temperature!r} is not a number") from exc
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(
            f"{where}: temperature {value!r} is outside [{low}, {high}] (calibration stays within it)"
        )
    return value


def check_values(where: str, tensors: Mapping[str, torch.Tensor]) -> None:
    """Every tensor floating point, finite and within ``±MAX_ABS_VALUE``.

    Raises:
        ValueError: the first tensor that is not, by name.
    """
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{where}: {name!r} is {type(tensor).__name__}, not a tensor")
        if not tensor.dtype.is_floating_point or tensor.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
            raise ValueError(f"{where}: tensor {name!r} is {tensor.dtype}; prompt files hold float32 values")
        values = tensor.detach().float()
        if not torch.isfinite(values).all():
            bad = int((~torch.isfinite(values)).sum())
            raise ValueError(f"{where}: tensor {name!r} has {bad} NaN/inf values; refusing to use it")
        if values.numel() and float(values.abs().max()) > MAX_ABS_VALUE:
            raise ValueError(
                f"{where}: tensor {name!r} has values beyond ±{MAX_ABS_VALUE:g} (max |x| = "
                f"{float(values.abs().max()):.3g}); a trained prompt or head never does"
            )


def check_labels(
    where: str, num_labels: int | None, id2label: Mapping[int, str], head: Mapping[str, torch.Tensor]
) -> None:
    """``id2label`` names exactly the classes ``0..num_labels-1`` (or none), and a head has an output layer
    of ``num_labels`` rows (so a model built from ``num_labels`` is no larger than the file's own head)."""
    if num_labels is None:
        if id2label:
            raise ValueError(f"{where}: id2label {dict(id2label)} but no num_labels (no head)")
        return
    if not 1 <= num_labels <= MAX_NUM_LABELS:
        raise ValueError(f"{where}: num_labels={num_labels} is outside [1, {MAX_NUM_LABELS}]")
    if id2label and sorted(id2label) != list(range(num_labels)):
        raise ValueError(
            f"{where}: id2label has ids {sorted(id2label)[:10]} but num_labels={num_labels} needs ids 0..{num_labels - 1}"
        )
    if head and not any(t.dim() == 2 and t.shape[0] == num_labels for t in head.values()):
        shapes = {k: tuple(t.shape) for k, t in head.items()}
        raise ValueError(
            f"{where}: num_labels={num_labels} but no head weight has {num_labels} rows ({shapes})"
        )


def base_fingerprint(model: Any) -> dict[str, Any]:
    """What identifies the base model a prompt was trained on: type, sizes, and a hash of the input embeddings.

    The hash covers the first 64 rows of the input-embedding matrix rounded to bf16, so the same model held
    in fp32 or cast to bf16 gives the same fingerprint, and another checkpoint of the same shape does not.
    """
    weight = model.get_input_embeddings().weight.detach()
    rows = weight[:_FINGERPRINT_ROWS].to("cpu", torch.bfloat16).contiguous()
    digest = hashlib.sha256(rows.view(torch.int16).numpy().tobytes()).hexdigest()[:16]
    config = model.config
    return {
        "model_type": str(getattr(config, "model_type", "")),
        "vocab_size": int(weight.shape[0]),
        "embedding_dim": int(weight.shape[1]),
        "hidden_size": int(getattr(config, "hidden_size", 0) or 0),
        "embeddings_sha256": digest,
    }


def fingerprint_mismatch(recorded: Mapping[str, Any], model: Any) -> list[str]:
    """The fields where ``model`` differs from a file's recorded fingerprint (empty: the same base model)."""
    current = base_fingerprint(model)
    return [
        f"{key} {recorded[key]!r} in the file, {current[key]!r} in the model"
        for key in current
        if key in recorded and recorded[key] != current[key]
    ]


def base_model_mismatch(recorded: Mapping[str, Any] | None, recorded_name: str | None, model: Any) -> str:
    """Why a file's prompt was not trained on ``model`` ("" when nothing says so).

    With a recorded fingerprint, its differing fields; without one (files from before the fingerprint),
    only the base model names can be compared, and only when both are known.

    Examples:
        >>> base_model_mismatch(None, "org/bert-small", model)  # doctest: +SKIP
        "trained on base model 'org/bert-small' but this model is 'org/other'"
    """
    name = str(getattr(model.config, "_name_or_path", "") or "")
    if recorded:  # type, sizes and a hash of the input embeddings: the weights themselves
        differences = fingerprint_mismatch(recorded, model)
        if differences:
            return (
                f"trained on another base model ({recorded_name!r}) than this {type(model).__name__} "
                f"({name!r}): " + "; ".join(differences)
            )
    elif recorded_name and name and Path(recorded_name).name != Path(name).name:
        return f"trained on base model {recorded_name!r} but this model is {name!r}"
    return ""


def check_task(where: str, task: Task | None, num_labels: int | None) -> None:
    """A regression head has one output; a classification or multi-label head at least two."""
    if task is None:
        return
    if num_labels is None:
        raise ValueError(f"{where}: task {task.type.value!r} needs a head, but num_labels is not set")
    if (task.type is TaskType.REGRESSION) != (num_labels == 1):
        raise ValueError(
            f"{where}: task {task.type.value!r} does not fit num_labels={num_labels} "
            "(regression has 1 output, classification and multi-label at least 2)"
        )


def check_tensors(
    where: str,
    prompt: torch.Tensor,
    head: dict[str, torch.Tensor],
    config: SoftPromptConfig,
    deep_prompts: torch.Tensor | None = None,
    deep_reparam: dict[str, torch.Tensor] | None = None,
    prompt_reparam: dict[str, torch.Tensor] | None = None,
) -> None:
    """Shapes that agree with the config (prompt, deep vectors, training state), and :func:`check_values` on every tensor."""
    expected = config.num_virtual_tokens
    if prompt.dim() != 2 or prompt.shape[0] != expected:
        raise ValueError(
            f"{where}: {PROMPT_KEY} has shape {tuple(prompt.shape)} but the config says {expected} virtual tokens "
            "of shape (num_virtual_tokens, embedding_dim)"
        )
    if config.deep and deep_prompts is None:
        raise ValueError(f"{where}: config has deep=True but there is no {DEEP_KEY!r} tensor")
    if not config.deep and (deep_prompts is not None or deep_reparam):
        raise ValueError(f"{where}: has deep prompt tensors but its config has deep=False")
    if deep_reparam and config.deep_reparam_hidden is None and config.residual_hidden is None:
        raise ValueError(
            f"{where}: has {DEEP_REPARAM_PREFIX}* tensors but its config trains the deep vectors through no MLP "
            "(deep_reparam_hidden and residual_hidden are None)"
        )
    if prompt_reparam:
        if config.residual_hidden is None:
            raise ValueError(
                f"{where}: has {PROMPT_REPARAM_PREFIX}* tensors but its config has residual_hidden=None"
            )
        raw = prompt_reparam.get("prompt")
        if raw is None or tuple(raw.shape) != tuple(prompt.shape):
            raise ValueError(
                f"{where}: {PROMPT_REPARAM_PREFIX}prompt must hold the unfolded vectors, of the prompt's shape "
                f"{tuple(prompt.shape)}; found {None if raw is None else tuple(raw.shape)}"
            )
    if deep_prompts is not None and (deep_prompts.dim() != 3 or deep_prompts.shape[1] != expected):
        raise ValueError(
            f"{where}: {DEEP_KEY} has shape {tuple(deep_prompts.shape)} but should be (num_layers - 1, "
            f"{expected} virtual tokens, hidden_size)"
        )
    named = {
        PROMPT_KEY: prompt,
        **{HEAD_PREFIX + k: v for k, v in head.items()},
        **({DEEP_KEY: deep_prompts} if deep_prompts is not None else {}),
        **{DEEP_REPARAM_PREFIX + k: v for k, v in (deep_reparam or {}).items()},
        **{PROMPT_REPARAM_PREFIX + k: v for k, v in (prompt_reparam or {}).items()},
    }
    check_values(where, named)
