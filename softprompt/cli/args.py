"""The ``softprompt`` commands' flags, generated from dataclasses by ``transformers.HfArgumentParser``.

``train`` and ``finetune`` take every :class:`~softprompt.RunConfig` field (``--lr``; the
``TrainingArguments`` spelling ``--learning_rate`` is the same flag), every other ``TrainingArguments``
field as an override of the library's defaults (``--gradient_accumulation_steps 2``), ``--seeds`` and
``--config FILE`` (flags given too win over the file). ``eval``, ``predict`` and ``inspect`` take the
fields of :mod:`softprompt.cli.command_args`.

Examples:
    >>> args = command_parser("train").parse_args(["--model", "m", "--data", "d", "--learning_rate", "0.1"])
    >>> run_config_from_args(args).lr  # doctest: +SKIP
    0.1
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import types
import typing
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from transformers.hf_argparser import HfArgumentParser

from softprompt.cli.command_args import COMMAND_ARGS
from softprompt.cli.parser import COMMANDS, CommandParser
from softprompt.runs.config import FINETUNE_DEFAULTS, RunConfig
from softprompt.runs.config_file import read_config_file, resolve_config_keys
from softprompt.runs.overrides import NOT_OVERRIDABLE, OWNED_TRAINING_ARGS, training_arg_names

__all__ = [
    "FINETUNE_DEFAULTS",
    "PROMPT_DEFAULTS",
    "DataclassParser",
    "add_dataclass_flags",
    "add_run_flags",
    "command_parser",
    "parse_command",
    "run_config_from_args",
    "size",
]

# what each training command changes of RunConfig's defaults (which are prompt tuning's)
PROMPT_DEFAULTS: Mapping[str, Any] = types.MappingProxyType({})
RUN_COMMANDS: dict[str, Mapping[str, Any]] = {"train": PROMPT_DEFAULTS, "finetune": FINETUNE_DEFAULTS}
GIVEN = "_flags_given"  # namespace attribute: dest -> (flag, value) of each flag on the command line
CONFIG_READERS = "_config_readers"  # namespace attribute: flag name -> (type, choices) for --config values
_RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name != "training_args")


class DataclassParser(CommandParser, HfArgumentParser):
    """``HfArgumentParser`` with one-line errors (exit status 2) and no abbreviated flags."""


def size(text: str) -> int | None:
    """``--train-size all`` or a positive int (``0`` is an error, not "all")."""
    if text.lower() in ("all", "none"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number or 'all', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number or 'all', got {text!r}")
    return value


_TEXT_TYPES = {"train_size": size, "eval_size": size}  # fields whose flag reads more than the type's syntax


class _Store(argparse.Action):
    """Store the value and remember the flag: two spellings of one setting (``--lr``, ``--learning_rate``)
    with two values are an error, never a silent last-one-wins."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:  # fmt: skip
        given = namespace.__dict__.setdefault(GIVEN, {})
        flag, value = given.get(self.dest, (option_string, values))
        if flag != option_string and value != values:
            parser.error(
                f"{flag} {value} and {option_string} {values} are one setting ({self.dest}); give one"
            )
        given[self.dest] = (option_string, values)
        setattr(namespace, self.dest, values)


def add_dataclass_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    skip: Collection[str] = (),
    aliases: Mapping[str, Sequence[str]] | None = None,
    switches: bool = False,
) -> list[argparse.Action]:
    """One flag per field of the dataclass ``cls`` (``HfArgumentParser``'s reading of its type and help).

    ``--a-b`` and ``--a_b`` both work, the dashed one shown first. A field whose metadata says
    ``positional=True`` is a positional argument; with ``switches`` a ``bool`` field that defaults to
    ``False`` is a switch that takes no value (so ``--int8 "some text"`` leaves the text positional).

    Args:
        parser: The parser or argument group to add to.
        cls: A dataclass whose fields carry ``metadata={"help": ...}``.
        skip: Fields to leave out.
        aliases: More flags per field, e.g. ``{"lr": ["--learning_rate"]}``.
        switches: ``bool`` fields as ``store_true`` switches instead of ``--flag [true|false]``.

    Returns:
        The actions added.
    """
    hints = typing.get_type_hints(cls)
    added = []
    for f in dataclasses.fields(cls):
        if not f.init or f.name in skip:
            continue
        meta = dict(f.metadata)
        flags = [f"--{f.name.replace('_', '-')}", *([f"--{f.name}"] if "_" in f.name else [])]
        if meta.pop("positional", False):
            nargs = "*" if typing.get_origin(hints[f.name]) is list else None
            added.append(parser.add_argument(f.name, nargs=nargs, help=meta["help"]))
            continue
        if switches and hints[f.name] is bool and f.default is False:
            added.append(parser.add_argument(*flags, action="store_true", help=meta["help"]))
            continue
        meta["aliases"] = [*meta.get("aliases", ()), *(aliases or {}).get(f.name, ())]
        resolved = copy.copy(f)  # HfArgumentParser rewrites the field's type: never on the class itself
        resolved.type, resolved.metadata = hints[f.name], types.MappingProxyType(meta)
        before = len(parser._actions)
        HfArgumentParser._parse_dataclass_field(parser, resolved)
        for action in parser._actions[before:]:  # shown as --train-size, --train_size, then the aliases
            action.option_strings.sort(key=lambda s: (s not in flags, "_" in s))
            if action.dest in _TEXT_TYPES:
                action.type = _TEXT_TYPES[action.dest]
            added.append(action)
    return added


def _training_flags(parser: argparse.ArgumentParser) -> None:
    """A flag per ``TrainingArguments`` field a ``RunConfig`` does not own; only the flags given count."""
    from transformers import TrainingArguments

    group = parser.add_argument_group(
        "TrainingArguments overrides",
        "any other TrainingArguments field; a flag given here replaces the library's default (evaluate and save "
        "every epoch, keep the best checkpoint, length-grouped batches, no reporting), else transformers' own",
    )
    hints = typing.get_type_hints(TrainingArguments)
    for f in dataclasses.fields(TrainingArguments):
        if not f.init or f.name in OWNED_TRAINING_ARGS or f.name in NOT_OVERRIDABLE:
            continue
        # the first sentence of the help only: the list is long already
        first = f.metadata.get("help", "").split(". ")[0].rstrip(".")
        resolved = copy.copy(f)
        resolved.type = hints[f.name]
        resolved.metadata = types.MappingProxyType({**f.metadata, "help": first or f.name})
        before = len(parser._actions)
        HfArgumentParser._parse_dataclass_field(group, resolved)
        for action in parser._actions[before:]:
            action.default = argparse.SUPPRESS  # absent unless given: the library's default stays
            action.required = False


class _ConfigFile(argparse.Action):
    """``--config FILE``: keep the path and how each flag reads text; :func:`run_config_from_args` reads
    the file (parsing stays free of I/O, and the file's errors are reported like the run's)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:  # fmt: skip
        setattr(namespace, self.dest, values)
        readers = {
            flag[2:]: (action.type, action.choices)
            for flag, action in parser._option_string_actions.items()
            if flag.startswith("--")
        }
        setattr(namespace, CONFIG_READERS, readers)


def _config_settings(path: str, readers: Mapping[str, tuple[Any, Any]]) -> dict[str, Any]:
    """The ``--config`` file's ``RunConfig`` keyword arguments, string values read as their flags read them."""
    source = repr(str(path))
    try:
        settings = resolve_config_keys(read_config_file(path), source=source)
        return {k: _from_text(readers, k, v, source) for k, v in settings.items()}
    except argparse.ArgumentTypeError as exc:
        raise ValueError(f"{source}: {exc}") from exc


def _from_text(readers: Mapping[str, tuple[Any, Any]], key: str, value: Any, source: str) -> Any:
    """A file's string values read as the flag reads them (YAML reads ``1e-2`` as a string; ``all`` sizes)."""
    if key == "training_args":
        return {k: _from_text(readers, k, v, source) for k, v in value.items()}
    if key not in readers:
        return value
    read, choices = readers[key]
    items = value if isinstance(value, list) else [value]
    items = [read(v) if isinstance(v, str) and callable(read) else v for v in items]
    bad = [v for v in items if v is not None and choices is not None and v not in choices]
    if bad:
        raise ValueError(f"{source}: {key}: {bad[0]!r} is not one of {list(choices)}")
    return items if isinstance(value, list) else items[0]


def add_run_flags(
    parser: argparse.ArgumentParser, defaults: Mapping[str, Any] | None = None
) -> argparse.ArgumentParser:
    """The flags of ``softprompt train``, ``softprompt finetune`` and the examples; read them with
    :func:`run_config_from_args`.

    Args:
        parser: Any ``ArgumentParser`` (a :class:`~softprompt.cli.parser.CommandParser` gives one-line errors).
        defaults: ``RunConfig`` fields whose default differs here, e.g. :data:`FINETUNE_DEFAULTS` or an
            example's ``{"model": "bert-base-uncased", "data": "my-dataset"}``.

    Returns:
        ``parser``.

    Examples:
        >>> parser = add_run_flags(CommandParser(prog="my_run.py"), {"data": "my-data"})  # doctest: +SKIP
        >>> cfg = run_config_from_args(parser.parse_args())  # doctest: +SKIP
    """
    defaults = dict(defaults or {})
    unknown = sorted(set(defaults) - set(_RUN_FIELDS) - training_arg_names())
    if unknown:
        raise ValueError(f"defaults: {unknown} are neither RunConfig nor TrainingArguments fields")
    parser.register("action", None, _Store)  # every flag added from here on remembers its spelling
    if parser.usage is None:  # argparse would list the hundred TrainingArguments flags
        parser.usage = "%(prog)s --model MODEL --data DATA [flags] [--config FILE] (-h lists the flags)"
    group = parser.add_argument_group("run (RunConfig)")
    owned: dict[str, list[str]] = {}
    for ta_name, field_name in OWNED_TRAINING_ARGS.items():
        if ta_name != field_name:
            owned.setdefault(field_name, []).extend([f"--{ta_name}", f"--{ta_name.replace('_', '-')}"])
    for action in add_dataclass_flags(group, RunConfig, skip=("training_args",), aliases=owned):
        action.required = False  # --model and --data may come from --config: run_config_from_args checks
    group.add_argument("--seeds", type=int, nargs="+", metavar="SEED", help="one run per seed into "
                       "OUTPUT_DIR/seed-SEED, all on the subset of --data-seed (default: --seed); prints and "
                       "writes seeds.json: mean ± sd, min, max per epoch")  # fmt: skip
    group.add_argument("--config", action=_ConfigFile, metavar="FILE", help="a .yaml or .json file of settings: "
                       "RunConfig or TrainingArguments field names (a run's run_config.json reruns it); flags "
                       "given too win")  # fmt: skip
    _training_flags(parser)
    parser.flag_hints = {f"--{k}": v for k, v in NOT_OVERRIDABLE.items() if k not in _RUN_FIELDS}
    parser.set_defaults(**defaults)
    return parser


def run_config_from_args(args: argparse.Namespace) -> RunConfig:
    """The :class:`RunConfig` of parsed :func:`add_run_flags` flags: the parser's defaults, then the
    ``--config`` file, then the flags given; ``TrainingArguments`` flags given become ``training_args``.

    Raises:
        OSError: the ``--config`` file cannot be read.
        ValueError: a bad ``--config`` file (an unknown key names the closest valid one), no ``model`` or
            ``data`` anywhere, or a value ``RunConfig`` refuses.
    """
    given = getattr(args, GIVEN, {})
    path = getattr(args, "config", None)
    from_file = _config_settings(path, getattr(args, CONFIG_READERS, {})) if path else {}
    overrides = from_file.pop("training_args", {})
    values = vars(args)
    settings = {k: v for k, v in values.items() if k in _RUN_FIELDS and k not in given}
    settings |= from_file
    settings |= {k: values[k] for k in given if k in _RUN_FIELDS}
    overrides |= {k: v for k, v in values.items() if k in training_arg_names() and k not in _RUN_FIELDS}
    for name in ("model", "data"):
        if settings.get(name) is None:
            raise ValueError(f"--{name} is required: give it as a flag or in the --config file")
    return RunConfig(**settings, training_args=overrides)


def command_parser(command: str, parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The flags of ``softprompt COMMAND`` (added to ``parser``, else to a new :class:`DataclassParser`)."""
    if parser is None:
        parser = DataclassParser(prog=f"softprompt {command}", description=COMMANDS[command])
    if command in RUN_COMMANDS:
        add_run_flags(parser, RUN_COMMANDS[command])
    else:
        parser.register(
            "action", None, _Store
        )  # remembers which flags were given (eval: given beats the run's)
        add_dataclass_flags(parser, COMMAND_ARGS[command], switches=True)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log at INFO level; tracebacks on errors"
    )
    parser.add_argument(
        "--threads",
        default=None,
        metavar="N|auto",
        help="CPU threads for PyTorch; 'auto': the cores other processes leave free (default: one per core, "
        "with a warning when other work keeps cores busy)",
    )
    return parser


def parse_command(command: str, argv: Sequence[str]) -> tuple[Any, bool, Any]:
    """``(settings, verbose, threads)`` of ``softprompt COMMAND argv``: for ``train`` and ``finetune`` the parsed
    flags (:func:`run_config_from_args` reads them, so that its errors are reported like the run's), else
    the command's dataclass (:mod:`softprompt.cli.command_args`)."""
    args = command_parser(command).parse_args(list(argv))
    if command in RUN_COMMANDS:
        return args, args.verbose, args.threads
    cls = COMMAND_ARGS[command]
    settings = cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if f.init})
    if hasattr(settings, "flags_given"):  # a flag given with its default value (--eval-size all) still counts
        settings.flags_given = frozenset(getattr(args, GIVEN, {}))
    return settings, args.verbose, args.threads
