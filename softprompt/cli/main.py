"""The ``softprompt`` command: a thin layer over the public API.

softprompt train --model M --data D --output-dir runs/pt      # prompt tuning, writes results.json
softprompt train --config runs/pt/run_config.json --overwrite # the same run again, from its resolved config
softprompt finetune --model M --data D --output-dir runs/ft   # full fine-tuning
softprompt eval --prompt runs/pt/prompt.safetensors --model M --data D --eval-size 1000
softprompt predict --prompt runs/pt/prompt.safetensors --model M "a great film"
softprompt inspect runs/pt/prompt.safetensors

Each command's flags are generated from dataclasses (:mod:`softprompt.cli.args`), and only the command
being run builds its parser, so ``softprompt --help`` imports neither torch nor transformers.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from softprompt.cli.parser import COMMANDS, CommandParser
from softprompt.version import __version__

__all__ = ["build_parser", "main", "report_errors"]

_DESCRIPTION = "Prompt tuning and fine-tuning for Hugging Face encoders."


def _parser(*, full: bool) -> argparse.ArgumentParser:
    """The top-level parser; ``full``: with every subcommand's flags (slow: imports transformers)."""
    parser = CommandParser(
        prog="softprompt", description=_DESCRIPTION, epilog="softprompt COMMAND --help lists its flags"
    )
    parser.add_argument("--version", action="version", version=f"softprompt {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log at INFO level; tracebacks on errors"
    )
    if not full:
        sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
        for name, text in COMMANDS.items():  # names only: main builds the chosen command's parser
            sub.add_parser(name, help=text, add_help=False)
        return parser
    from softprompt.cli.args import DataclassParser, command_parser

    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=DataclassParser
    )
    for name, text in COMMANDS.items():
        command_parser(name, sub.add_parser(name, help=text, description=text))
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, every subcommand's flags included (for tests and docs; :func:`main`
    builds only the parser of the command it runs)."""
    return _parser(full=True)


def report_errors(func: Callable[[], Any], prog: str, *, verbose: bool = False) -> int:
    """Run ``func()``; a user error becomes one line on stderr and exit status 2 (what ``softprompt`` does).

    For scripts built on the library, such as the examples::

        raise SystemExit(report_errors(main, "my_script.py"))
    """
    try:
        result = func()
        return int(result) if isinstance(result, int) else 0
    except BrokenPipeError:  # `... | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, OSError, TypeError, KeyError) as exc:  # OSError: a bad model path, an unwritable file
        if verbose:
            traceback.print_exc()
        message = " ".join(str(exc).split()) or type(exc).__name__  # one line
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2


def _run(command: str, args: Any) -> int:
    from softprompt.cli import commands

    if command in ("train", "finetune"):
        from softprompt.cli.args import run_config_from_args

        return commands.train(run_config_from_args(args), finetune=command == "finetune", seeds=args.seeds)
    return commands.BY_COMMAND[command](args)


def _end_process_group() -> None:
    """Under ``torchrun``, close the process group ``Trainer`` opened: left to interpreter exit, its
    communication threads can abort a rank (``terminate called without an active exception``)."""
    if "torch.distributed" not in sys.modules:  # nothing distributed was imported, nothing to close
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``softprompt`` console script.

    Usage errors (argparse's, and a bad ``--config`` file) exit with status 2 through ``SystemExit``;
    errors of the run itself return 2. Both are one line on stderr.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    at = next((i for i, word in enumerate(argv) if not word.startswith("-")), len(argv))  # the command
    top = _parser(full=False).parse_args(argv[: at + 1])
    from softprompt.cli.args import parse_command

    args, verbose, threads = parse_command(top.command, argv[at + 1 :])
    verbose = verbose or top.verbose
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )

    def run() -> int:
        if top.command != "inspect" and top.command != "push":  # the commands that compute
            from softprompt.utils.threads import apply_threads

            apply_threads(threads)
        try:
            return _run(top.command, args)
        finally:
            _end_process_group()

    return report_errors(run, f"softprompt {top.command}", verbose=verbose)


if __name__ == "__main__":
    raise SystemExit(main())
