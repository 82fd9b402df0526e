"""Inference over the task table: `predict` and `evaluate_model` for wrappers and bare models, and calibration.

Everything the old ``softprompt.inference`` module offered is importable from here: the engine's
``predict_logits``, ``length_batches`` and friends (:mod:`softprompt.engine.logits`) and ``predict``.

Examples:
    >>> from softprompt.inference import predict, predict_logits
"""

from typing import Any

from softprompt.engine.logits import (
    CPU_MAX_BATCH_TOKENS,
    check_batching,
    forward_rows,
    length_batches,
    predict_logits,
    validate_texts,
)
from softprompt.inference.dispatch import model_task, predict

__all__ = [
    "CPU_MAX_BATCH_TOKENS",
    "calibrate",
    "check_batching",
    "evaluate_classifier",
    "evaluate_model",
    "fit_temperature",
    "forward_rows",
    "length_batches",
    "model_task",
    "predict",
    "predict_logits",
    "validate_texts",
]

# imported on first use: scoring a dataset pulls in `datasets`, which predicting does not need
_LAZY = {
    "calibrate": "softprompt.inference.calibration",
    "fit_temperature": "softprompt.inference.calibration",
    "evaluate_classifier": "softprompt.inference.evaluate",
    "evaluate_model": "softprompt.inference.evaluate",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
