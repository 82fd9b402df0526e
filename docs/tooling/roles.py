"""A griffe extension for the API reference: the package's Sphinx-style roles become site links.

Docstrings in ``softprompt`` cross-reference with Sphinx roles (``:class:`~softprompt.Task```), which read
well in the source and in ``help()``. On the site, a role whose target is rendered in the API reference
becomes an autorefs link (`` [`Task`][softprompt.Task] ``), one whose target exists but is internal becomes
inline code, and one whose target does not exist is a **warning**, so ``mkdocs build --strict`` fails on a
broken reference. Targets are resolved as Python resolves them: an absolute dotted path, else a name in the
docstring's own module, else an attribute of its class.

mkdocs.yml loads it with ``extensions: [docs/tooling/roles.py:SphinxRoles]``.
"""

from __future__ import annotations

import html
import importlib
import inspect
import logging
import re
import sys
from pathlib import Path
from typing import Any

import griffe

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference import _unwrap, public_paths  # the reference pages' own list of what is rendered

ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj|py:\w+):`(~?)([^`<>]+)`")
CODE_SPAN = re.compile(r"``.*?``|`[^`]*`", re.S)
BARE_TAG = re.compile(r"</?[A-Za-z][\w-]*>")
SECTION = re.compile(r"^[A-Z][\w ]*:\s*$")  # a Google-style section header (Args:, Returns:...)
_MISSING = object()
_FIELD = object()  # an annotated attribute: it exists, it has no page of its own
# mkdocs counts warnings of loggers under "mkdocs"; --strict turns them into a failed build
log = logging.getLogger("mkdocs.plugins.softprompt.roles")


def _import_path(dotted: str) -> Any:
    """The object at ``dotted`` (``package.module.Class.attr``), or ``_MISSING``."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        return _getattrs(obj, parts[cut:])
    return _MISSING


def _getattrs(obj: Any, names: list[str]) -> Any:
    for name in names:
        try:
            obj = inspect.getattr_static(obj, name) if inspect.isclass(obj) else getattr(obj, name)
        except AttributeError:
            fields = {k for c in getattr(obj, "__mro__", ()) for k in getattr(c, "__annotations__", {})}
            if name not in fields:  # a dataclass field without a default is no class attribute
                return _MISSING
            obj = _FIELD
    return obj


class SphinxRoles(griffe.Extension):
    """Rewrites every docstring of the loaded package once it is loaded (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.public = public_paths()  # id(runtime object) -> its path in the reference

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        self._walk(pkg)

    def _walk(self, obj: griffe.Object) -> None:
        if obj.is_class:
            _field_help(obj)
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(lambda m: self._render(m, obj), obj.docstring.value)
            text = CODE_SPAN.sub(lambda m: "\n" * m.group(0).count("\n"), obj.docstring.value)
            for line in _prose_lines(text):
                if tag := BARE_TAG.search(line):
                    # Markdown would take <s> for HTML (strikethrough) and drop it from the page
                    log.warning(
                        f"{obj.path}: docstring has {tag.group(0)} outside backticks: {line.strip()!r}"
                    )
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member)

    def _resolve(self, target: str, owner: griffe.Object) -> Any:
        found = _import_path(target)
        if found is not _MISSING:
            return found
        module = importlib.import_module(owner.module.path)
        head, *rest = target.split(".")
        # then the name as the package exports it: docstrings name public classes that their module
        # imports only for type checking (``SoftPromptWrapper`` in the layers below the wrapper)
        scopes = [module, importlib.import_module("softprompt")]
        cls = (
            owner
            if owner.is_class
            else owner.parent
            if owner.parent is not None and owner.parent.is_class
            else None
        )
        if cls is not None:
            scopes.insert(0, _import_path(cls.path))
        for scope in scopes:
            if scope is _MISSING:
                continue
            found = _getattrs(scope, [head, *rest])
            if found is not _MISSING:
                return found
        return _MISSING

    def _render(self, match: re.Match[str], owner: griffe.Object) -> str:
        tilde, target = match.groups()
        target = target.strip().removesuffix("()")
        shown = target.rsplit(".", 1)[-1] if tilde else target
        found = self._resolve(target, owner)
        if found is _MISSING:
            log.warning(f"{owner.path}: docstring reference {match.group(0)} names nothing that exists")
            return f"`{shown}`"
        path = self.public.get(id(_unwrap(found)))
        return f"[`{shown}`][{path}]" if path else f"`{shown}`"


def _field_help(cls: griffe.Object) -> None:
    """A dataclass field documented by its ``metadata["help"]`` (the CLI's help text) gets it as its docstring."""
    runtime = _import_path(cls.path)
    for field in getattr(runtime, "__dataclass_fields__", {}).values():
        text = field.metadata.get("help") if field.metadata else None
        member = cls.members.get(field.name)
        if text and member is not None and not member.is_alias and member.docstring is None:
            text = html.escape(text[0].upper() + text[1:] + ".", quote=False)  # <split> is text, not HTML
            member.docstring = griffe.Docstring(text, parent=member)


def _prose_lines(text: str) -> list[str]:
    """The lines Markdown renders as prose: not doctests and their output, not indented code blocks."""
    out, in_section, in_doctest = [], False, False
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if not line.strip():
            in_doctest = False
            continue
        if indent == 0:
            in_section = bool(SECTION.match(line))
        if line.lstrip().startswith(">>>") or in_doctest:
            in_doctest = True
        elif not (indent >= 4 and not in_section):
            out.append(line)
    return out
