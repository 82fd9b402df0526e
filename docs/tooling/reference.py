"""Writes the API reference pages (``docs/reference/``) and their navigation in ``mkdocs.yml``.

One page per public name, PEFT-style (signature, parameters, returns, raises, example, all from the
docstring through mkdocstrings), grouped as below; one page for the command line, generated from the
parser that ``softprompt`` itself builds from its argument dataclasses. Every public name of
``softprompt``, ``softprompt.data`` and ``softprompt.finetune`` must be in a group, or this fails.

Regenerate after changing the public API: ``python docs/tooling/reference.py``;
``tests/test_site.py`` fails while the checked-in pages differ from what this writes.
"""

from __future__ import annotations

import argparse
import html
import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[1]
MKDOCS_YML = DOCS.parent / "mkdocs.yml"
NAV_BEGIN, NAV_END = "  # reference:begin (written by docs/tooling/reference.py)", "  # reference:end"

# (title, [(module, name), ...]): the reference's sections, in the order a user meets them


def _names(module: str, names: str) -> list[tuple[str, str]]:
    return [(module, name) for name in names.split()]


GROUPS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Prompt tuning",
        _names(
            "softprompt",
            "SoftPromptWrapper SoftPromptConfig PromptInit Placement Overflow PromptSlot AutoModelForTextToLabel",
        ),
    ),
    (
        "Training",
        _names(
            "softprompt",
            "train_prompt PromptTrainer PromptTrainingResult fit_regression_head HeadFit default_training_args build_compute_metrics "
            "RunConfig run_prompt_tuning run_finetune TrainingResult run_seeds format_seed_summary",
        ),
    ),
    (
        "Prediction and evaluation",
        _names(
            "softprompt",
            "predict predict_logits predict_with_wrapper decode Prediction MultiLabelPrediction "
            "RegressionPrediction Entity Answer GeneratedPrediction calibrate fit_temperature evaluate_model "
            "compute_classification_metrics compute_task_metrics load_metric",
        ),
    ),
    ("Tasks", _names("softprompt", "Task TaskType")),
    (
        "Prompt files and PEFT",
        _names(
            "softprompt",
            "PromptFile read_prompt_file export_peft_adapter import_peft_adapter load_peft_adapter",
        ),
    ),
    (
        "Data (softprompt.data)",
        _names(
            "softprompt.data",
            "load_data TaskData load_text_classification tokenize_dataset tokenize_text_to_label check_tokenized",
        ),
    ),
    (
        "Fine-tuning (softprompt.finetune)",
        _names(
            "softprompt.finetune", "finetune FinetuneResult save_finetuned load_finetuned calibrate_finetuned"
        ),
    ),
]
MODULES = ("softprompt", "softprompt.data", "softprompt.finetune")
NOT_REFERENCED = {"__version__"}  # a string, shown on the reference's index page
ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):`~?([^`]+)`")


def _page(module: str, name: str) -> str:
    return f"reference/{module.removeprefix('softprompt').lstrip('.') or 'api'}/{name}.md"


def class_members(cls: type) -> list[str]:
    """Public methods and properties a class defines itself or takes from its softprompt bases, in source order."""
    seen: dict[str, None] = {}
    for base in reversed(cls.__mro__):
        if base.__module__.startswith("softprompt"):
            for key, value in vars(base).items():
                if not key.startswith("_") and (
                    isinstance(value, property)
                    or callable(value)
                    or isinstance(value, (classmethod, staticmethod))
                ):
                    seen.setdefault(key, None)
    return list(seen)


def _unwrap(obj: Any) -> Any:
    return obj.__func__ if isinstance(obj, (classmethod, staticmethod)) else obj


def public_paths() -> dict[int, str]:
    """``id(object) -> path`` of everything the reference renders: each public name and its classes' members."""
    paths: dict[int, str] = {}
    for _, entries in GROUPS:
        for module, name in entries:
            obj = getattr(importlib.import_module(module), name)
            paths.setdefault(id(obj), f"{module}.{name}")
            if inspect.isclass(obj):
                for member in class_members(obj):
                    value = _unwrap(inspect.getattr_static(obj, member))
                    paths.setdefault(id(value), f"{module}.{name}.{member}")
    return paths


def _check_groups() -> None:
    grouped = {(m, n) for _, entries in GROUPS for m, n in entries}
    objects = {id(getattr(importlib.import_module(m), n)) for m, n in grouped}
    for module in MODULES:
        for name in importlib.import_module(module).__all__:
            obj = getattr(importlib.import_module(module), name)
            if name not in NOT_REFERENCED and id(obj) not in objects:
                raise SystemExit(f"{module}.{name} is public but in no group of {__file__}")


def _summary(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    first = doc.split("\n\n", 1)[0].replace("\n", " ").strip()
    first = ROLE.sub(lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", first)
    return html.escape(first, quote=False).replace("|", "\\|")


def api_page(module: str, name: str) -> str:
    obj = getattr(importlib.import_module(module), name)
    lines = [f"::: {module}.{name}"]
    if inspect.isclass(obj):
        # a dataclass's fields documented by their help text (RunConfig's: the CLI flags), then methods
        fields = [n for n, f in getattr(obj, "__dataclass_fields__", {}).items() if f.metadata.get("help")]
        members = fields + class_members(obj)
        lines += [
            "    options:",
            "      inherited_members: true",
            f"      members: [{', '.join(members)}]" if members else "      members: false",
        ]
    return "\n".join(lines) + "\n"


def _aliases() -> list[tuple[str, str, str]]:
    """``(alias, name, page)`` for public names that are another grouped name's object under a second name."""
    grouped = {}
    for _, entries in GROUPS:
        for module, name in entries:
            grouped.setdefault(id(getattr(importlib.import_module(module), name)), (module, name))
    out = []
    for module in MODULES:
        for name in sorted(importlib.import_module(module).__all__):
            target = grouped.get(id(getattr(importlib.import_module(module), name)))
            if (
                target
                and target[1] != name
                and (module, name) not in {(m, n) for _, e in GROUPS for m, n in e}
            ):
                out.append((f"{module}.{name}", target[1], _page(*target).removeprefix("reference/")))
    return out


def index_page() -> str:
    import softprompt

    out = [
        "# API reference",
        "",
        "Generated from the docstrings: one page per public name, with its signature, parameters, return value,",
        "errors and an example that runs in the test suite (`tests/test_doctests.py`). Everything here is",
        "importable from `softprompt` (the data functions from `softprompt.data` too); fine-tuning lives in",
        f"`softprompt.finetune`. This is softprompt {softprompt.__version__} (`softprompt.__version__`).",
        "",
    ]
    for title, entries in GROUPS:
        out += [f"## {title}", "", "| name | what it is |", "| --- | --- |"]
        for module, name in entries:
            obj = getattr(importlib.import_module(module), name)
            out.append(f"| [`{name}`]({_page(module, name).removeprefix('reference/')}) | {_summary(obj)} |")
        out.append("")
    out += [
        "## Command line",
        "",
        "[`softprompt COMMAND`](cli.md): every command's flags, defaults and help.",
        "",
    ]
    return "\n".join(out)


def cli_page() -> str:
    from softprompt.cli import COMMANDS, build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = [
        "# Command line",
        "",
        "Generated from the parser `softprompt` builds from its argument dataclasses",
        "(`softprompt.RunConfig` for `train` and `finetune`, `softprompt.cli.command_args` for the rest), so",
        "it lists exactly the flags the command accepts. `softprompt COMMAND --help` prints the same.",
        "Guide: [the command line](../cli.md).",
        "",
    ]
    for command in COMMANDS:
        cmd = sub.choices[command]
        usage = " ".join(cmd.format_usage().split()).removeprefix("usage: ")
        out += [
            f"## `softprompt {command}`",
            "",
            COMMANDS[command].replace("|", "\\|") + ".",
            "",
            "```text",
            usage,
            "```",
            "",
            "| flag | default | what it does |",
            "| --- | --- | --- |",
        ]
        for action in cmd._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            flag = ", ".join(action.option_strings) or action.metavar or action.dest
            if action.option_strings and action.nargs != 0:
                flag += f" {action.metavar or action.dest.upper()}"
            default = (
                "required"
                if action.required
                else ("" if action.default in (None, False, argparse.SUPPRESS) else f"`{action.default}`")
            )
            text = html.escape(" ".join((action.help or "").split()), quote=False).replace("|", "\\|")
            out.append(f"| `{flag}` | {default} | {text} |")
        out.append("")
    return "\n".join(out)


def nav_block() -> str:
    lines = [NAV_BEGIN, "  - API reference:", "      - reference/index.md"]
    for title, entries in GROUPS:
        lines.append(f"      - {title}:")
        lines += [f"          - {name}: {_page(module, name)}" for module, name in entries]
    lines += ["      - Command line: reference/cli.md", NAV_END]
    return "\n".join(lines)


def expected_files() -> dict[Path, str]:
    """Every file this script owns, with the text it should hold."""
    _check_groups()
    files = {DOCS / "reference" / "index.md": index_page(), DOCS / "reference" / "cli.md": cli_page()}
    for _, entries in GROUPS:
        for module, name in entries:
            files[DOCS / _page(module, name)] = api_page(module, name)
    yml = MKDOCS_YML.read_text()
    head, rest = yml.split(NAV_BEGIN, 1)
    files[MKDOCS_YML] = head + nav_block() + rest.split(NAV_END, 1)[1]
    return files


def main() -> None:
    for path in sorted((DOCS / "reference").rglob("*.md")):
        path.unlink()
    for path, text in expected_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"wrote {len(expected_files())} files under {DOCS / 'reference'} and the nav of {MKDOCS_YML.name}")


if __name__ == "__main__":
    sys.exit(main())
