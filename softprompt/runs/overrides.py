"""`TrainingArguments` overrides of a run: which fields a `RunConfig` owns, and checking the others.

A run builds its ``TrainingArguments`` from the library's defaults (:func:`softprompt.default_training_args`)
and its :class:`~softprompt.RunConfig`; ``RunConfig.training_args`` changes any other field on top.

Examples:
    >>> check_training_overrides({"gradient_accumulation_steps": 2, "weight_decay": 0.1})
    {'gradient_accumulation_steps': 2, 'weight_decay': 0.1}
    >>> check_training_overrides({"learning_rate": 0.1})
    Traceback (most recent call last):
    ...
    ValueError: training_args: learning_rate is RunConfig's lr (the flag --lr); set that instead
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "HUB_ARGS",
    "NOT_OVERRIDABLE",
    "OWNED_TRAINING_ARGS",
    "check_training_overrides",
    "hub_target",
    "training_arg_names",
]

# TrainingArguments field -> the RunConfig field that sets it (one setting, never two that can disagree);
# on the command line the TrainingArguments spelling is another name of the RunConfig flag
OWNED_TRAINING_ARGS: dict[str, str] = {
    "bf16": "bf16",
    "data_seed": "data_seed",
    "full_determinism": "deterministic",
    "learning_rate": "lr",
    "lr_scheduler_type": "scheduler",
    "num_train_epochs": "epochs",
    "output_dir": "output_dir",
    "per_device_eval_batch_size": "eval_batch_size",
    "per_device_train_batch_size": "batch_size",
    "seed": "seed",
    "warmup_steps": "warmup",
}
# TrainingArguments fields a run sets itself, with the reason
NOT_OVERRIDABLE: dict[str, str] = {
    "label_names": "the labels are always the 'labels' column; RunConfig's label_names are class names",
    "resume_from_checkpoint": "a run resumes with RunConfig's resume (--resume), from its newest complete checkpoint",
}


@functools.cache
def training_arg_names() -> frozenset[str]:
    """Every ``transformers.TrainingArguments`` field a caller can set (imports transformers' Trainer side)."""
    from transformers import TrainingArguments

    return frozenset(f.name for f in dataclasses.fields(TrainingArguments) if f.init)


def _plain(value: Any) -> Any:
    """Enum members as their values (JSON-ready and equal however they were given)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def check_training_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``overrides`` as a plain dict of ``TrainingArguments`` keywords, or the error that says what to use.

    Values are checked by ``TrainingArguments`` itself when the run builds it.

    Args:
        overrides: ``TrainingArguments`` field names and values, e.g. ``{"weight_decay": 0.1}``.

    Returns:
        A new dict (enum members replaced by their values).

    Raises:
        TypeError: not a mapping, or a key that is not a string.
        ValueError: an unknown field (naming the closest one), a field a ``RunConfig`` owns (naming
            the ``RunConfig`` field to set) or one a run sets itself.

    Examples:
        >>> check_training_overrides({"optim": "adafactor"})
        {'optim': 'adafactor'}
    """
    if not isinstance(overrides, Mapping):
        raise TypeError(
            f"training_args must be a dict of TrainingArguments fields, got {type(overrides).__name__}"
        )
    checked = {}
    for key, value in overrides.items():
        if not isinstance(key, str):
            raise TypeError(f"training_args keys must be strings, got {key!r}")
        if key in OWNED_TRAINING_ARGS:
            field = OWNED_TRAINING_ARGS[key]
            raise ValueError(
                f"training_args: {key} is RunConfig's {field} (the flag --{field.replace('_', '-')}); set that instead"
            )
        if key in NOT_OVERRIDABLE:
            raise ValueError(f"training_args: {key} cannot be set: {NOT_OVERRIDABLE[key]}")
        if key not in training_arg_names():
            close = difflib.get_close_matches(key, sorted(training_arg_names()), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"training_args: {key!r} is not a TrainingArguments field{hint}")
        checked[key] = _plain(value)
    return checked


# TrainingArguments' Hub settings: a prompt-tuning run uploads its prompt folder itself once it is scored
# (Trainer would push checkpoints and a card of its own); for fine-tuning they are refused.
HUB_ARGS = ("push_to_hub", "hub_model_id", "hub_token", "hub_private_repo", "hub_strategy", "hub_always_push",
            "hub_revision")  # fmt: skip


def hub_target(
    training_args: Mapping[str, Any], output_dir: str | os.PathLike[str], kind: str
) -> dict[str, Any] | None:
    """Where a run pushes its prompt folder (``--push_to_hub``), checked before any training; ``None``: nowhere.

    Args:
        training_args: The run's ``TrainingArguments`` overrides (``RunConfig.training_args``).
        output_dir: The run's folder (the repo's default name, as ``Trainer`` names it).
        kind: ``"prompt_tuning"`` or ``"finetune"`` (which refuses to upload).

    Raises:
        ValueError: Hub settings without ``push_to_hub``, a fine-tuning run, offline, or a bad repo id.

    Examples:
        >>> hub_target({}, "runs/pt", "prompt_tuning") is None
        True
    """
    given = {k: v for k, v in training_args.items() if k in HUB_ARGS}
    if not given.get("push_to_hub"):
        if given:
            raise ValueError(f"{sorted(given)} set without push_to_hub: add --push_to_hub, or drop them")
        return None
    if kind == "finetune":
        raise ValueError(
            "push_to_hub: fine-tuning runs do not upload; push the saved model folder with "
            "model.push_to_hub or `hf upload` once the run is scored"
        )
    from huggingface_hub import constants
    from huggingface_hub.utils import validate_repo_id

    if constants.HF_HUB_OFFLINE:
        raise ValueError("push_to_hub needs the network and HF_HUB_OFFLINE=1 is set: unset it, or push later")
    repo_id = given.get("hub_model_id") or Path(output_dir).resolve().name  # as Trainer names it
    validate_repo_id(repo_id)
    return {"repo_id": repo_id, "token": given.get("hub_token"), "private": given.get("hub_private_repo"),
            "revision": given.get("hub_revision")}  # fmt: skip
