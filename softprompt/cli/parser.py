"""The command line's parser class and command table: one-line errors, no abbreviations, defaults in ``--help``.

The bottom of :mod:`softprompt.cli`: the flags (:mod:`~softprompt.cli.args`) and the entry point
(:mod:`~softprompt.cli.main`) both build on it.
"""

from __future__ import annotations

import argparse
import difflib
from typing import Any, NoReturn

__all__ = ["COMMANDS", "CommandParser"]

COMMANDS = {
    "train": "prompt-tune a frozen encoder; writes prompt.safetensors, run_config.json and results.json",
    "finetune": "fine-tune a whole encoder; writes the model folder, run_config.json and results.json",
    "eval": "score a prompt (or fine-tuned model) on the same test subset `train` used",
    "predict": "predict labels for texts; JSON lines out",
    "inspect": "show a prompt file's metadata and tensor sizes as JSON",
    "push": "upload a prompt folder (a run's output dir) to the Hugging Face Hub",
    "export": "write a prompt merged into a plain transformers model folder (or ONNX) that runs without softprompt",
}


class _DefaultsShown(argparse.ArgumentDefaultsHelpFormatter):
    """``(default: X)`` after each flag's help, except where there is nothing to say (``None``, off)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class CommandParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line, ``PROG: error: MESSAGE``, with exit status 2.

    An unknown flag names the closest known one; flags are never abbreviated (``--eval`` is not
    ``--eval-size``), and ``--help`` shows the defaults.

    Examples:
        >>> parser = CommandParser(prog="my_run.py")
        >>> parser.add_argument("--epochs", type=float, default=3, help="training epochs")  # doctest: +ELLIPSIS
        _StoreAction(...)
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _DefaultsShown)
        super().__init__(**kwargs)

    def error(self, message: str) -> NoReturn:
        """Exit with status 2 and one line, ``PROG: error: MESSAGE``, naming the closest known flag."""
        message = " ".join(message.split())
        if message.startswith("unrecognized arguments:"):
            message += self._hint(message.split(":", 1)[1].split())
        self.exit(2, f"{self.prog}: error: {message}\n")

    def _hint(self, words: list[str]) -> str:
        flag = next((word.split("=")[0] for word in words if word.startswith("--")), None)
        if flag is None:
            return ""
        hints = getattr(self, "flag_hints", {})  # set by add_run_flags
        if flag in hints:
            return f" ({flag[2:]}: {hints[flag]})"
        close = difflib.get_close_matches(flag, list(self._option_string_actions), n=1)
        return f" (did you mean {close[0]}?)" if close else ""
