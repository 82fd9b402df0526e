"""Every code block in README.md and docs/*.md runs, so the docs cannot rot.

Python blocks of one page run in order in one namespace, in a temporary folder, against tiny models:
``from_pretrained("bert-base-uncased")`` gives a tiny BERT and the in-memory tokenizer, and the data
set ``"imdb"`` is the local IMDb copy cut to a few dozen reviews. Shell blocks: every ``softprompt``,
``torchrun ... -m softprompt.cli`` and ``python examples/...`` line must parse with the real argument
parsers, so a renamed flag breaks this test.
"""

import argparse
import contextlib
import re
import shlex
from pathlib import Path

import pytest

import softprompt
import softprompt.data
from softprompt.cli import FINETUNE_DEFAULTS, PROMPT_DEFAULTS, add_run_flags, build_parser
from tests.conftest import IMDB_DIR
from tests.hub_server import serving
from tests.stand_ins import patch_hub_names

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def blocks(page: Path, lang: str) -> list[str]:
    return [code for kind, code in BLOCK.findall(page.read_text()) if kind == lang]


@pytest.fixture
def tiny_hub(monkeypatch):
    """Hub names resolve to tiny local stand-ins; nothing is downloaded."""
    real_load = softprompt.data.load_data
    patch_hub_names(monkeypatch)

    def small_data(data, **kwargs):
        if isinstance(data, str) and data == "imdb":
            if not IMDB_DIR.is_dir():
                pytest.skip(f"no local IMDb copy at {IMDB_DIR}")
            data = str(IMDB_DIR)
            kwargs.setdefault("label_names", ["neg", "pos"])  # what the Hub's ClassLabel says
        elif isinstance(data, str) and data.startswith("../shared/data/"):  # the docs run from the repo root
            local = REPO.parent / data[len("../") :]
            if not local.is_dir():
                pytest.skip(f"no local copy at {local}")
            data = str(local)
        for key, cap in (("train_size", 32), ("eval_size", 16)):
            if isinstance(data, str) and (kwargs.get(key) is None or kwargs[key] > cap):
                kwargs[key] = cap  # cut real data sets; in-memory frames are small already
        return real_load(data, **kwargs)

    monkeypatch.setattr(softprompt, "load_data", small_data)
    monkeypatch.setattr(softprompt.data, "load_data", small_data)


@pytest.mark.slow
# tutorial.md runs command by command, each in its own process, in tests/test_tutorial.py
@pytest.mark.parametrize(
    "page", [p for p in PAGES if blocks(p, "python") and p.name != "tutorial.md"], ids=lambda p: p.name
)
def test_python_blocks_run(page, tiny_hub, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    if page.name in ("prompt-files.md", "multi-prompt.md"):  # they read a prompt the quickstart trained
        for code in blocks(REPO / "docs" / "quickstart.md", "python")[:1]:
            exec(compile(code, "quickstart.md", "exec"), namespace)
    with contextlib.ExitStack() as stack:
        if page.name == "hub.md":  # push_to_hub and Hub repo ids reach a stand-in Hub on 127.0.0.1
            stack.enter_context(serving(monkeypatch, tmp_path / "hf-home"))
        for i, code in enumerate(blocks(page, "python")):
            exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)


def _parse_shell_line(line: str) -> None:
    words = shlex.split(line)
    if words[0] == "softprompt":
        build_parser().parse_args(words[1:])
    elif words[0] == "torchrun":
        build_parser().parse_args(words[words.index("softprompt.cli") + 1 :])
    elif words[0] == "python" and words[1].startswith("examples/"):
        script = REPO / words[1]
        assert script.is_file(), script
        defaults = FINETUNE_DEFAULTS if "finetune" in script.name else PROMPT_DEFAULTS
        add_run_flags(argparse.ArgumentParser(), defaults).parse_args(words[2:])


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_shell_commands_parse(page):
    for code in blocks(page, "bash"):
        for line in code.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(("softprompt ", "torchrun ", "python examples/")):
                _parse_shell_line(line)
