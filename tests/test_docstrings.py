"""Docstrings are the reference's source of truth: every public function, class and method documents itself fully.

The public API is what the site's reference renders (``docs/tooling/reference.py``: each public name of
``softprompt``, ``softprompt.data`` and ``softprompt.finetune``, and each public method and property of a
public class). Each of them has, in Google style as griffe (the reference's parser) reads it:

- a one-line summary;
- ``Args:`` naming every parameter of the signature (``self``/``cls`` aside; ``*args``/``**kwargs`` too);
- ``Returns:`` (or ``Yields:``) unless it returns ``None`` (classes and properties aside);
- ``Raises:`` when its own body raises;
- ``Examples:`` with a ``>>>`` line, run by ``tests/test_doctests.py`` (properties aside: they are attributes).

``interrogate`` (in ``.ci/run``) checks that every non-private name of the whole package has a docstring.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
import textwrap
from functools import cache
from pathlib import Path

import griffe
import pytest

sys.path.insert(
    0, str(Path(__file__).resolve().parents[1] / "docs" / "tooling")
)  # docs/tooling is no package
from reference import GROUPS, class_members


def public_api() -> list[tuple[str, object]]:
    """``(path, object)`` for every public name and class member the reference renders."""
    out = []
    for _, entries in GROUPS:
        for module, name in entries:
            obj = getattr(importlib.import_module(module), name)
            out.append((f"{module}.{name}", obj))
            if inspect.isclass(obj):
                for member in class_members(obj):
                    out.append((f"{module}.{name}.{member}", inspect.getattr_static(obj, member)))
    return out


@cache
def _package() -> griffe.Object:
    return griffe.load("softprompt", docstring_parser="google", resolve_aliases=True)


def _griffe_object(path: str) -> griffe.Object:
    obj = _package()
    for part in path.split(".")[1:]:
        obj = obj.final_target if obj.is_alias else obj
        obj = (obj.all_members if obj.is_class else obj.members)[part]
    return obj.final_target if obj.is_alias else obj


def _sections(obj: griffe.Object) -> dict[str, list]:
    out: dict[str, list] = {}
    for section in obj.docstring.parsed if obj.docstring else []:
        out.setdefault(section.kind.value, []).append(section)
    return out


def _raises_itself(func: object) -> bool:
    """Whether the function's own body (not a nested function's) has a ``raise X`` statement."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError):
        return False
    body = tree.body[0]

    def walk(node: ast.AST) -> bool:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                continue
            if (isinstance(child, ast.Raise) and child.exc is not None) or walk(child):
                return True
        return False

    return walk(body)


def problems(path: str, obj: object) -> list[str]:
    """What the docstring of ``obj`` (at ``path``) lacks."""
    g = _griffe_object(path)
    if not g.docstring or not g.docstring.value.strip():
        return ["no docstring"]
    found = _sections(g)
    if g.is_class:  # a dataclass's fields may be documented where they are declared, in a base class
        for base in g.mro():
            for kind, sections in _sections(base).items():
                if kind in ("attributes", "parameters"):
                    found.setdefault(kind, []).extend(sections)
    out = []
    is_property = isinstance(obj, property) or "property" in g.labels
    func = obj.__func__ if isinstance(obj, (classmethod, staticmethod)) else obj
    if not is_property:
        if inspect.isclass(obj):
            params = [p for p in (g.parameters if g.is_function else _init_parameters(g))]
        else:
            params = list(g.parameters)
        names = {p.name for p in params} - {"self", "cls"}
        names = {n for n in names if not n.startswith("_")}
        documented = {p.name.lstrip("*") for s in found.get("parameters", []) for p in s.value}
        documented |= {a.name for s in found.get("attributes", []) for a in s.value}
        # a dataclass field's metadata["help"] (the CLI's help text) is its documentation, on the site too
        fields = getattr(obj, "__dataclass_fields__", {}) if inspect.isclass(obj) else {}
        documented |= {name for name, f in fields.items() if f.metadata.get("help")}
        if missing := sorted(names - documented):
            out.append(f"Args: lacks {', '.join(missing)}")
        if not inspect.isclass(obj) and _returns_something(g) and not {"returns", "yields"} & found.keys():
            out.append("no Returns:")
        if not inspect.isclass(obj) and _raises_itself(func) and "raises" not in found:
            out.append("raises but has no Raises:")
        if not any(
            ">>>" in str(getattr(part, "value", part)) for s in found.get("examples", []) for part in s.value
        ):
            out.append("no Examples: with >>>")
    return out


def _init_parameters(cls: griffe.Object) -> list:
    init = cls.all_members.get("__init__")
    if init is None:
        return []
    init = init.final_target if init.is_alias else init
    return list(init.parameters)


def _returns_something(func: griffe.Object) -> bool:
    returns = str(func.returns) if func.returns is not None else ""
    return returns not in ("None", "NoReturn", "") and not func.name.startswith("__")


API = public_api()


@pytest.mark.parametrize(("path", "obj"), API, ids=[path for path, _ in API])
def test_public_docstring_is_complete(path: str, obj: object) -> None:
    assert not (found := problems(path, obj)), f"{path}: " + "; ".join(found)


if __name__ == "__main__":  # a report: python -m tests.test_docstrings
    bad = [(path, problems(path, obj)) for path, obj in API]
    for path, found in bad:
        if found:
            print(f"{path}: {'; '.join(found)}")
    print(f"{sum(1 for _, f in bad if f)} of {len(bad)} incomplete")
