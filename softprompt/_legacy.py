"""The 0.x module paths, kept working: ``import softprompt.prompt_file`` gives ``softprompt.files.prompt_file``.

The package was flat until the layered layout (``docs/architecture.md``); code that imported a module
by its old path gets the module at its new path, the same object, with a ``DeprecationWarning`` that
names the new path. Where names moved between modules: ``docs/architecture.md``, "Old module paths".
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType
from typing import Any

__all__ = ["MOVED_MODULES", "install", "moved_attribute"]

MOVED_MODULES: dict[str, str] = {
    "softprompt.atomic": "softprompt.utils.atomic",
    "softprompt.backbone": "softprompt.models.backbone",
    "softprompt.base_model": "softprompt.models.loading",
    "softprompt.calibration": "softprompt.inference.calibration",
    "softprompt.checkpoints": "softprompt.training.checkpoints",
    "softprompt.chunk_log": "softprompt.stream.chunk_log",
    "softprompt.cli_args": "softprompt.cli.args",
    "softprompt.command_args": "softprompt.cli.command_args",
    "softprompt.commands": "softprompt.cli.commands",
    "softprompt.config": "softprompt.core.config",
    "softprompt.config_file": "softprompt.runs.config_file",
    "softprompt.decoder": "softprompt.models.decoder",
    "softprompt.deep": "softprompt.models.deep",
    "softprompt.evaluation": "softprompt.inference.evaluate",
    "softprompt.first_token": "softprompt.models.first_token",
    "softprompt.generation": "softprompt.wrapper.generation",
    "softprompt.heads": "softprompt.models.heads",
    "softprompt.init": "softprompt.models.init",
    "softprompt.input_stream": "softprompt.stream.input",
    "softprompt.layout": "softprompt.models.layout",
    "softprompt.metrics.custom": "softprompt.tasks.scoring",
    "softprompt.model_card": "softprompt.hub.model_card",
    "softprompt.model_support": "softprompt.models.support",
    "softprompt.onednn": "softprompt.models.onednn",
    "softprompt.peft_export": "softprompt.hub.peft_export",
    "softprompt.peft_import": "softprompt.hub.peft_import",
    "softprompt.peft_interop": "softprompt.wrapper.peft",
    "softprompt.plots": "softprompt.runs.plots",
    "softprompt.precision": "softprompt.models.precision",
    "softprompt.predict_stream": "softprompt.stream.predict",
    "softprompt.predictions": "softprompt.core.predictions",
    "softprompt.pretrained": "softprompt.wrapper.pretrained",
    "softprompt.prompt_checks": "softprompt.files.checks",
    "softprompt.prompt_file": "softprompt.files.prompt_file",
    "softprompt.prompt_folder": "softprompt.hub.folder",
    "softprompt.prompt_inference": "softprompt.wrapper.predict",
    "softprompt.qa_inference": "softprompt.tasks.answers",
    "softprompt.quantize": "softprompt.models.quantize",
    "softprompt.registry": "softprompt.models.prompt_registry",
    "softprompt.run_config": "softprompt.runs.config",
    "softprompt.run_loading": "softprompt.runs.loading",
    "softprompt.sampling": "softprompt.training.sampling",
    "softprompt.seeds": "softprompt.runs.seeds",
    "softprompt.seq2seq": "softprompt.models.seq2seq",
    "softprompt.sharding": "softprompt.utils.sharding",
    "softprompt.slot": "softprompt.models.slot",
    "softprompt.spans": "softprompt.models.spans",
    "softprompt.task": "softprompt.core.task",
    "softprompt.text_to_label": "softprompt.tasks.text_to_label",
    "softprompt.text_to_label_training": "softprompt.tasks.text_to_label",
    "softprompt.threads": "softprompt.utils.threads",
    "softprompt.token_inference": "softprompt.tasks.entities",
    "softprompt.trainer": "softprompt.training.trainer",
    "softprompt.trainer_parts": "softprompt.training.assembly",
    "softprompt.training_args": "softprompt.training.arguments",
    "softprompt.training_overrides": "softprompt.runs.overrides",
}
"""Old module path -> new module path. ``softprompt.wrapper``, ``softprompt.cli``, ``softprompt.hub``,
``softprompt.inference`` and ``softprompt.runs`` are packages now and re-export their old names."""


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module path and loads it as the module at its new path (one module object, two names)."""

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED_MODULES[spec.name]
        warnings.warn(
            f"{spec.name} moved to {new} (docs/architecture.md); the old path will be removed in a later release",
            DeprecationWarning,
            stacklevel=3,
        )
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module at its new path is loaded already."""


def install() -> None:
    """Put the finder of old module paths on ``sys.meta_path`` (once per process).

    Examples:
        >>> install()
    """
    if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())


def moved_attribute(name: str) -> Any:
    """``softprompt.<old module name>`` as an attribute (``softprompt.prompt_file`` after ``import softprompt``).

    Raises:
        AttributeError: no such name, old or new.

    Examples:
        >>> moved_attribute("no_such_name")
        Traceback (most recent call last):
        AttributeError: module 'softprompt' has no attribute 'no_such_name'
    """
    old = f"softprompt.{name}"
    if old in MOVED_MODULES:
        return importlib.import_module(old)
    raise AttributeError(f"module 'softprompt' has no attribute {name!r}")
