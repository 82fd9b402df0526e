"""Run settings from a YAML or JSON file: ``softprompt train --config run.yaml`` (flags given too win).

A file's keys are :class:`~softprompt.RunConfig` field names (``lr``, ``train_size``...), ``TrainingArguments``
field names (``gradient_accumulation_steps``; one a ``RunConfig`` owns, such as ``learning_rate``, sets
that field) and ``training_args``, a mapping of ``TrainingArguments`` fields, as ``run_config.json`` holds
them.

Examples:
    >>> resolve_config_keys({"learning_rate": 0.1, "weight_decay": 0.01, "train_size": 100})
    {'lr': 0.1, 'train_size': 100, 'training_args': {'weight_decay': 0.01}}
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from softprompt.runs.config import RunConfig
from softprompt.runs.overrides import (
    NOT_OVERRIDABLE,
    OWNED_TRAINING_ARGS,
    check_training_overrides,
    training_arg_names,
)
from softprompt.utils.inputs import parse_json, parse_yaml, read_bounded_text

__all__ = ["read_config_file", "resolve_config_keys"]

_SUFFIXES = {".json": "JSON", ".yaml": "YAML", ".yml": "YAML"}


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping a ``.yaml``, ``.yml`` or ``.json`` file holds (an empty file: ``{}``).

    Raises:
        OSError: the file cannot be read.
        ValueError: another suffix, text that does not parse, or not a mapping with string keys.

    Examples:
        >>> read_config_file("run.yaml")  # doctest: +SKIP
        {'model': 'bert-base-uncased', 'data': 'glue', 'data_config': 'sst2', 'lr': 0.01}
    """
    path = Path(path)
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ValueError(
            f"{str(path)!r}: a config file is .yaml, .yml or .json, got {path.suffix or 'no suffix'!r}"
        )
    text = read_bounded_text(path, "config file")  # the input policy: bounded, no aliases, shallow
    values = parse_json(text, repr(str(path))) if kind == "JSON" else parse_yaml(text, repr(str(path)))
    if values is None:
        return {}
    if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
        raise ValueError(
            f"{str(path)!r}: a config file holds settings as 'key: value', got {type(values).__name__}"
        )
    return values


def _closest(key: str) -> str:
    names = [f.name for f in dataclasses.fields(RunConfig)] + sorted(training_arg_names())
    close = difflib.get_close_matches(key, names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def resolve_config_keys(values: Mapping[str, Any], *, source: str = "config") -> dict[str, Any]:
    """``RunConfig`` keyword arguments from a config file's keys.

    ``TrainingArguments`` keys a ``RunConfig`` owns become its fields (``learning_rate`` -> ``lr``); the
    other ``TrainingArguments`` keys join ``training_args``.

    Args:
        values: The file's mapping (:func:`read_config_file`).
        source: The file's name, for error messages.

    Returns:
        ``RunConfig`` fields, with ``training_args`` only if the file sets any.

    Raises:
        ValueError: an unknown key (naming the closest valid one), one setting given twice with two
            values (``lr`` and ``learning_rate``), or a ``TrainingArguments`` key a run sets itself.
    """
    run_fields = {f.name for f in dataclasses.fields(RunConfig)}
    resolved: dict[str, Any] = {}
    spelled: dict[str, str] = {}  # RunConfig field -> the key that set it
    overrides: dict[str, Any] = {}
    for key, value in values.items():
        if key == "training_args":
            if not isinstance(value, Mapping):
                raise ValueError(f"{source}: training_args must be a mapping of TrainingArguments fields")
            for name, inner in value.items():
                if name in overrides and overrides[name] != inner:
                    raise ValueError(f"{source}: {name} is given twice, as {overrides[name]!r} and {inner!r}")
                overrides[name] = inner
        elif key in run_fields or key in OWNED_TRAINING_ARGS:
            name = key if key in run_fields else OWNED_TRAINING_ARGS[key]
            if name in resolved and resolved[name] != value:
                raise ValueError(
                    f"{source}: {spelled[name]} and {key} are one setting ({name}) but hold {resolved[name]!r} and "
                    f"{value!r}; keep one"
                )
            resolved[name], spelled[name] = value, key
        elif key in NOT_OVERRIDABLE or key in training_arg_names():
            if key in overrides and overrides[key] != value:
                raise ValueError(f"{source}: {key} is given twice, as {overrides[key]!r} and {value!r}")
            overrides[key] = value
        else:
            raise ValueError(f"{source}: unknown key {key!r}{_closest(key)}")
    if overrides:
        try:
            resolved["training_args"] = check_training_overrides(overrides)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from exc
    return resolved
