"""One input policy for the small structured files softprompt reads: bounded before parsing, or refused.

``--config`` files, ``run_config.json``, PEFT's ``adapter_config.json`` and its header metadata, the state
file of a streamed prediction and the rows of a ``.jsonl`` input all go through here: the text is read up
to a size limit, JSON and YAML nest at most :data:`MAX_DEPTH` levels, YAML anchors and aliases are refused
(a 2 KB "billion laughs" file otherwise expands for minutes), and every failure is a ``ValueError`` that
names the file. Prompt files have their own, stricter validator (:mod:`softprompt.files.checks`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_TEXT_BYTES", "check_depth", "parse_json", "parse_yaml", "read_bounded_text"]

# settings files are a few KB; 1 MiB is far beyond any real one and still instant to parse
MAX_TEXT_BYTES = 1 << 20
# the deepest structure softprompt itself writes is 3 levels; 32 leaves room and stays far from recursion limits
MAX_DEPTH = 32


def read_bounded_text(path: str | os.PathLike[str], what: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of ``path``, refused when it is larger than ``max_bytes``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: too large, or not UTF-8 (naming the file and ``what`` it is).

    Examples:
        >>> read_bounded_text("run.yaml", "--config file")  # doctest: +SKIP
        'model: bert-base-uncased\\n'
    """
    path = Path(path)
    with path.open("rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(
            f"{str(path)!r}: a {what} of more than {max_bytes:,} bytes is refused; is it the right file?"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{str(path)!r}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def check_depth(value: Any, where: str, max_depth: int = MAX_DEPTH) -> None:
    """Refuse lists and mappings nested deeper than ``max_depth`` (walked without recursion).

    Raises:
        ValueError: nested too deep, naming ``where``.

    Examples:
        >>> check_depth({"a": [1, {"b": 2}]}, "config")
    """
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > max_depth:
                    raise ValueError(f"{where}: nested more than {max_depth} levels deep; refused")
                stack.append((child, depth + 1))


def parse_json(text: str | bytes, where: str, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads(text)``, nested at most ``max_depth`` levels.

    Raises:
        ValueError: not JSON, or nested too deep (a recursion error inside the decoder included).

    Examples:
        >>> parse_json('{"lr": 0.01}', "config")
        {'lr': 0.01}
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"{where}: nested more than {max_depth} levels deep; refused") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{where}: not valid JSON: {' '.join(str(exc).split())}") from exc
    check_depth(value, where, max_depth)
    return value


def parse_yaml(text: str, where: str, max_depth: int = MAX_DEPTH) -> Any:
    """``yaml.safe_load(text)`` without anchors or aliases, nested at most ``max_depth`` levels.

    The events are checked before anything is built, so an alias bomb costs the time to read its text.

    Raises:
        ValueError: not YAML, an anchor or alias (``&name``, ``*name``), or nested too deep.

    Examples:
        >>> parse_yaml("lr: 0.01\\nseed: 3", "config")
        {'lr': 0.01, 'seed': 3}
    """
    import yaml

    try:
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                raise ValueError(
                    f"{where}: YAML anchors and aliases (&name, *name) are not accepted; write each value out"
                )
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > max_depth:
                    raise ValueError(f"{where}: nested more than {max_depth} levels deep; refused")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{where}: not valid YAML: {' '.join(str(exc).split())}") from exc
