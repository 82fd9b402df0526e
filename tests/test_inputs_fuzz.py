"""Property-based fuzz of every small-file reader behind the input policy (seeded, a few seconds).

Whatever bytes a ``--config`` file, a state file, a PEFT ``adapter_config.json`` or a ``.jsonl`` input row
holds, the reader returns or raises a ``ValueError`` (naming the file): never another exception, never a
hang. ``benchmarks/fuzz_inputs.py`` runs the same readers on many more cases.
"""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softprompt.runs.config_file import read_config_file, resolve_config_keys
from softprompt.stream.chunk_log import read_state
from softprompt.stream.input import resolve_columns

# JSON-like values, nested and wide, with the scalars configs hold
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)
# text that is often almost JSON or YAML: fragments of both, anchors and aliases, deep brackets
FRAGMENTS = st.sampled_from(
    ["{", "}", "[", "]", ":", ",", "&a ", "*a", "- ", "\n", '"', "'", "!!python/object", "1e999"]
)
TEXTS = st.one_of(
    VALUES.map(json.dumps),
    st.lists(FRAGMENTS | st.text(max_size=5), max_size=60).map("".join),
    st.integers(1, 5_000).map(lambda n: "[" * n + "]" * n),
)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _survives(call, *args):
    with contextlib.suppress(ValueError):  # a clean refusal; any other exception fails the test
        call(*args)


@FUZZ
@given(text=TEXTS, suffix=st.sampled_from([".json", ".yaml"]))
def test_config_files(tmp_path, text, suffix):
    path = tmp_path / f"run{suffix}"
    path.write_text(text, encoding="utf-8")

    def read(p):
        resolve_config_keys(read_config_file(p), source=str(p))

    _survives(read, path)


@FUZZ
@given(text=TEXTS)
def test_state_files(tmp_path, text):
    path = tmp_path / "out.jsonl.state.json"
    path.write_text(text, encoding="utf-8")
    _survives(read_state, path)


@FUZZ
@given(lines=st.lists(TEXTS, min_size=1, max_size=3))
def test_jsonl_input_rows(tmp_path, lines):
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(line.replace("\n", " ") for line in lines) + "\n", encoding="utf-8")
    _survives(resolve_columns, path)


@FUZZ
@given(text=TEXTS)
def test_peft_adapter_configs(tmp_path, text, exported_adapter):
    from softprompt.hub.peft_import import slot_from_adapter

    folder, model = exported_adapter
    (folder / "adapter_config.json").write_text(text, encoding="utf-8")
    _survives(slot_from_adapter, model, folder)


@pytest.fixture(scope="module")
def exported_adapter(tmp_path_factory):
    from softprompt import SoftPromptConfig, SoftPromptWrapper, export_peft_adapter
    from tests.conftest import make_model

    model = make_model(seed=0)
    folder = export_peft_adapter(
        SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=4, placement="prepend")),
        tmp_path_factory.mktemp("fuzz") / "adapter",
    )
    return folder, make_model(seed=0)
