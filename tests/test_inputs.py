"""The input policy (softprompt.utils.inputs) and every reader that goes through it: bounded size and nesting,
no YAML aliases, one ValueError naming the file.

Before it, a 2 KB YAML alias bomb in ``--config`` ran for minutes, and deeply nested JSON in a config, a PEFT
``adapter_config.json``, a ``.jsonl`` input row or a state file ended in a ``RecursionError`` traceback.
"""

from __future__ import annotations

import time

import pytest

from softprompt import SoftPromptConfig
from softprompt.cli import main
from softprompt.runs.config_file import read_config_file
from softprompt.stream.chunk_log import read_state
from softprompt.stream.input import resolve_columns
from softprompt.utils.inputs import MAX_DEPTH, check_depth, parse_json, parse_yaml, read_bounded_text

# "billion laughs": nine levels of nine aliases, 2 KB of text, 9**9 strings once expanded
BOMB = "a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']\n" + "".join(
    f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")
)
DEEP_JSON = "[" * 100_000 + "]" * 100_000


def test_yaml_aliases_are_refused_before_anything_expands(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    assert len(BOMB) < 2_500
    start = time.perf_counter()
    with pytest.raises(
        ValueError, match=r"bomb.yaml'.*anchors and aliases \(&name, \*name\) are not accepted"
    ):
        read_config_file(path)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_deep_nesting_is_refused_in_config_files(tmp_path, suffix):
    path = tmp_path / f"deep{suffix}"
    path.write_text(DEEP_JSON if suffix == ".json" else "a: " + "[" * 5_000 + "]" * 5_000)
    with pytest.raises(ValueError, match=f"nested more than {MAX_DEPTH} levels deep"):
        read_config_file(path)


def test_the_cli_reports_a_bomb_in_one_line(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text(BOMB.replace("a: &a", "lr: &a"))
    start = time.perf_counter()
    try:  # usage errors exit through SystemExit, errors of the run return 2: either way, status 2
        code = main(["train", "--config", str(path)])
    except SystemExit as exc:
        code = exc.code
    assert code == 2 and time.perf_counter() - start < 10
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "anchors and aliases" in err[0] and "Traceback" not in err[0]


def test_state_files_input_rows_and_prompt_configs_are_bounded(tmp_path):
    state = tmp_path / "out.jsonl.state.json"
    state.write_text(DEEP_JSON)
    with pytest.raises(ValueError, match="state file .* nested more than"):
        read_state(state)
    rows = tmp_path / "in.jsonl"
    rows.write_text('{"text": ' + "[" * 50_000 + "]" * 50_000 + "}\n")
    with pytest.raises(ValueError, match="in.jsonl:1: nested more than"):
        resolve_columns(rows)
    with pytest.raises(ValueError, match="SoftPromptConfig JSON: nested more than"):
        SoftPromptConfig.from_json(DEEP_JSON)


def test_the_policy_itself(tmp_path):
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 2_000_000)
    with pytest.raises(ValueError, match="more than 1,048,576 bytes is refused"):
        read_bounded_text(big, "config file")
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        read_bounded_text(latin1, "config file")
    assert parse_json('{"a": [1, {"b": 2}]}', "x") == {"a": [1, {"b": 2}]}
    assert parse_yaml("a: [1, {b: 2}]", "x") == {"a": [1, {"b": 2}]}
    nested: list = []
    for _ in range(MAX_DEPTH - 1):
        nested = [nested]
    check_depth(nested, "x")  # exactly at the limit: fine
    with pytest.raises(ValueError, match="nested more than"):
        check_depth([nested], "x")
    with pytest.raises(ValueError, match="x: not valid JSON"):
        parse_json("{", "x")
    with pytest.raises(ValueError, match="x: not valid YAML"):
        parse_yaml("a: [", "x")
