"""Which checkpoint a run resumes from: the newest *complete* one.

``Trainer`` writes a checkpoint folder file by file (weights or prompt, optimizer, scheduler, RNG state)
and ``trainer_state.json`` last; a run killed meanwhile leaves a folder without a readable state, and
``resume_from_checkpoint=True`` would then fail on it until someone deletes it by hand. Here such a
folder is skipped with a warning and the newest complete one is used.
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from pathlib import Path

from softprompt.core.constants import PROMPT_NAME

__all__ = ["checkpoint_is_complete", "latest_complete_checkpoint"]

logger = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_WEIGHTS = (PROMPT_NAME, "model.safetensors", "model.safetensors.index.json")


def checkpoint_is_complete(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` holds weights and a readable ``trainer_state.json`` of its own step."""
    path = Path(folder)
    match = _CHECKPOINT.match(path.name)
    try:
        state = json.loads((path / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    step_ok = match is None or state.get("global_step") == int(match.group(1))
    return step_ok and any((path / name).is_file() for name in _WEIGHTS)


def latest_complete_checkpoint(output_dir: str | os.PathLike[str]) -> str | None:
    """The newest complete ``checkpoint-<step>`` folder of ``output_dir``, or ``None``; warns for each
    newer incomplete one it skips."""
    root = Path(output_dir)
    if not root.is_dir():
        return None
    found = sorted(
        ((int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))),
        reverse=True,
    )
    for _, path in found:
        if checkpoint_is_complete(path):
            return str(path)
        warnings.warn(
            f"skipping {path}: an incomplete checkpoint (the run stopped while writing it); resuming from an "
            "earlier one",
            UserWarning,
            stacklevel=2,
        )
    return None
