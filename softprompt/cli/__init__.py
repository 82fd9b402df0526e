"""The ``softprompt`` command line: a thin layer over the public API (``python -m softprompt.cli`` works too).

``parser`` (the parser class and command table) < ``command_args`` / ``args`` (flags from dataclasses) <
``loading`` (what eval and predict load) < ``evaluate`` (``softprompt eval``)
< ``commands`` (what each command does) < ``main`` (the entry point). Only the command being run builds
its flags, so ``softprompt --help`` imports neither torch nor transformers.

Examples:
    >>> from softprompt.cli import main
    >>> main(["inspect", "runs/pt/prompt.safetensors"])  # doctest: +SKIP
    0
"""

from typing import Any

from softprompt.cli.main import build_parser, main, report_errors
from softprompt.cli.parser import COMMANDS, CommandParser

__all__ = [
    "COMMANDS",
    "FINETUNE_DEFAULTS",
    "PROMPT_DEFAULTS",
    "CommandParser",
    "add_run_flags",
    "build_parser",
    "main",
    "report_errors",
    "run_config_from_args",
]

# defined with the flags, which import transformers: loaded on first use (PEP 562)
_FROM_ARGS = ("FINETUNE_DEFAULTS", "PROMPT_DEFAULTS", "add_run_flags", "run_config_from_args")


def __getattr__(name: str) -> Any:
    if name in _FROM_ARGS:
        from softprompt.cli import args

        return getattr(args, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
