"""Labels: which task a label column describes, and its values turned into what the head trains on.

Classification labels become int64 class ids, multi-label labels 0/1 float32 vectors, regression
labels float32 values. Every split is checked in full first, so a stray label is an error that
names its row, never a silent change of the class count.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import datasets
import numpy as np
import pyarrow as pa

from softprompt.core.task import Task, TaskType

__all__ = ["encode_labels", "given_names", "infer_task", "label_kind"]

logger = logging.getLogger(__name__)


def label_kind(feature: Any, column: pa.ChunkedArray) -> str:
    """What a label column holds: ``"class"`` (ClassLabel), ``"int"``, ``"float"``, ``"str"``, ``"list-str"``,
    ``"list-int"``, ``"list-float"``, ``"list-class"`` (a list of ClassLabel ids) or ``"other"``.

    Examples:
        >>> label_kind(datasets.Sequence(datasets.Value("string")), pa.chunked_array([[["O", "B-PER"]]]))
        'list-str'
    """
    if isinstance(feature, datasets.ClassLabel):
        return "class"
    if isinstance(feature, (datasets.Sequence, datasets.List, list)):
        inner = feature.feature if hasattr(feature, "feature") else feature[0]
        if isinstance(inner, datasets.ClassLabel):
            return "list-class"
    t = column.type
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        v = t.value_type
        if pa.types.is_string(v) or pa.types.is_large_string(v):
            return "list-str"
        if pa.types.is_integer(v):
            return "list-int"
        if pa.types.is_floating(v) or pa.types.is_boolean(v):
            return "list-float"
        return "other"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "str"
    return "other"


def infer_task(feature: Any, column: pa.ChunkedArray) -> TaskType | None:
    """The task a label column describes, or ``None`` where it is ambiguous.

    Lists are multi-label; strings, integers and class labels are classification; floats are
    regression when some value has a fraction, else classification (``1.0``/``0.0`` labels, as
    pandas writes integer columns with gaps); anything else is ``None``.

    Examples:
        >>> infer_task(datasets.Value("float32"), pa.chunked_array([[1.5, 4.2]])).value
        'regression'
    """
    kind = label_kind(feature, column)
    if kind.startswith("list"):
        return TaskType.MULTI_LABEL
    if kind in ("class", "int", "str"):
        return TaskType.CLASSIFICATION
    if kind == "float":
        values = column.to_numpy(zero_copy_only=False)
        finite = values[np.isfinite(values)]
        return TaskType.REGRESSION if np.any(finite != np.round(finite)) else TaskType.CLASSIFICATION
    return None


def encode_labels(
    task: Task, raw: dict[str, datasets.Dataset], column: str, source: str, label_names: Sequence[str] | None
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Every split's labels in the task's form, and the class names (``[]`` for regression).

    Without ``label_names`` or a ``ClassLabel``, the classes are those of the first split in
    ``raw`` (the training split, when it is loaded); a label that only a later split has is an
    error, never a new class.

    Raises:
        ValueError: a missing, non-finite, unknown, out-of-range or ill-typed label (the message
            names the split and row), class ids that skip a class, or ``label_names`` that
            disagree with the data's own names.
    """
    features = {s: ds.features[column] for s, ds in raw.items()}
    columns = {s: ds.data.column(column) for s, ds in raw.items()}
    for split, col in columns.items():
        if col.null_count:
            row = col.to_pylist().index(None)
            raise ValueError(
                f"split {split!r} of {source}: column {column!r} has a missing label at row {row}; drop or fill it"
            )
    if task.type is TaskType.REGRESSION:
        return {s: _regression(columns[s], features[s], f"split {s!r} of {source}", column) for s in raw}, []
    if task.type is TaskType.MULTI_LABEL:
        return _multi_label(features, columns, source, column, label_names)
    return _classification(features, columns, source, column, label_names)


def _regression(col: pa.ChunkedArray, feature: Any, where: str, column: str) -> np.ndarray:
    kind = label_kind(feature, col)
    if kind not in ("int", "float", "class"):
        raise ValueError(f"{where}: regression needs numeric labels, column {column!r} holds {col.type}")
    values = col.to_numpy(zero_copy_only=False).astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(
            f"{where}: column {column!r} has label {values[bad[0]]} at row {int(bad[0])}; values must be finite"
        )
    return values.astype(np.float32)


def _classification(
    features: dict[str, Any],
    columns: dict[str, pa.ChunkedArray],
    source: str,
    column: str,
    given: Sequence[str] | None,
) -> tuple[dict[str, np.ndarray], list[str]]:
    kinds = {s: label_kind(features[s], columns[s]) for s in columns}
    own = [list(f.names) for f in features.values() if isinstance(f, datasets.ClassLabel)]
    if any(names != own[0] for names in own):
        raise ValueError(
            f"the splits of {source} disagree on their class names: {own}; they must share one label set"
        )
    names = given_names(given, own[0] if own else None)
    if all(k == "str" for k in kinds.values()):
        values = {s: np.asarray(columns[s].to_pylist(), dtype=object) for s in columns}
        # the classes are the first split's (training, when loaded): a label only another split has is an error
        names = names or sorted({str(v) for v in next(iter(values.values()))})
        index = {n: i for i, n in enumerate(names)}
        out = {}
        for split, vals in values.items():
            unknown = [i for i, v in enumerate(vals) if v not in index]
            if unknown:
                row = unknown[0]
                raise ValueError(
                    f"split {split!r} of {source}: column {column!r} has label {vals[row]!r} at row {row}, which is "
                    f"not one of the classes {names}"
                )
            out[split] = np.asarray([index[v] for v in vals], dtype=np.int64)
        return out, names
    out = {}
    for split, col in columns.items():
        where = f"split {split!r} of {source}"
        if kinds[split] in ("int", "class"):
            out[split] = col.to_numpy(zero_copy_only=False).astype(np.int64)
        elif kinds[split] == "float":
            values = col.to_numpy(zero_copy_only=False)
            bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
            if bad.size:
                row = int(bad[0])
                raise ValueError(
                    f"{where}: column {column!r} has non-integer label {float(values[row])!r} at row {row}; class ids "
                    "must be whole numbers (for a numeric target pass task='regression')"
                )
            out[split] = values.astype(np.int64)
        else:
            raise ValueError(
                f"{where}: column {column!r} has label {col[0].as_py()!r} (type {col.type}) at row 0; classification "
                "labels are integer class ids or class names (strings)"
            )
    seen = np.unique(next(iter(out.values())))  # the first split's (training, when loaded) ids
    if names is None:
        top = int(seen.max())
        missing = sorted(set(range(top + 1)) - set(seen.tolist()))
        if seen.min() < 0 or missing:
            split, row = _first(out, lambda v: v == top)
            raise ValueError(
                f"split {split!r} of {source}: column {column!r} has class ids {seen.tolist()}, not 0..K-1 with every class "
                f"present (e.g. label {int(out[split][row])} at row {row}); a stray id would silently add classes. "
                "Fix the labels, or pass label_names= with one name per class"
            )
        names = [str(i) for i in range(top + 1)]
    for split, values in out.items():
        bad = np.flatnonzero((values < 0) | (values >= len(names)))
        if bad.size:
            row = int(bad[0])
            hint = (
                " (-1 usually marks an unlabelled row, as in GLUE test splits)" if values[row] == -1 else ""
            )
            raise ValueError(
                f"split {split!r} of {source}: column {column!r} has label {int(values[row])} at row {row}, outside "
                f"[0, {len(names)}) for the {len(names)} classes {names}{hint}; fix the labels or pass label_names="
            )
    return out, names


def _multi_label(
    features: dict[str, Any],
    columns: dict[str, pa.ChunkedArray],
    source: str,
    column: str,
    given: Sequence[str] | None,
) -> tuple[dict[str, np.ndarray], list[str]]:
    kinds = {s: label_kind(features[s], columns[s]) for s in columns}
    if len(set(kinds.values())) != 1 or next(iter(kinds.values())) not in (
        "list-str",
        "list-int",
        "list-float",
        "list-class",
    ):
        raise ValueError(
            f"{source}: multi-label column {column!r} must hold, in every split, lists of class names, lists of class ids "
            f"or 0/1 vectors; found {sorted(set(kinds.values()))}"
        )
    kind = next(iter(kinds.values()))
    rows = {s: columns[s].to_pylist() for s in columns}
    if kind == "list-float":  # 0/1 vectors
        out = {}
        width = None
        for split, vals in rows.items():
            for i, v in enumerate(vals):
                if width is None:
                    width = len(v)
                if len(v) != width or any(x not in (0, 1) for x in v):
                    raise ValueError(
                        f"split {split!r} of {source}: column {column!r} row {i} is {v!r:.80}; 0/1 vectors must all "
                        f"have {width} entries of 0 or 1"
                    )
            out[split] = np.asarray(vals, dtype=np.float32).reshape(len(vals), width or 0)
        names = given_names(given, None) or [str(i) for i in range(width or 0)]
        if len(names) != width:
            raise ValueError(f"label_names has {len(names)} names for 0/1 vectors of {width} classes")
        return out, names
    if kind == "list-class":
        own = list(features[next(iter(features))].feature.names)
        names = given_names(given, own)
    elif kind == "list-str":  # as for classification, the first split's classes
        names = given_names(given, None) or sorted({str(x) for v in next(iter(rows.values())) for x in v})
    else:
        top = max((max(v) for v in next(iter(rows.values())) if v), default=-1)
        names = given_names(given, None) or [str(i) for i in range(top + 1)]
    index = {n: i for i, n in enumerate(names)}
    out = {}
    for split, vals in rows.items():
        matrix = np.zeros((len(vals), len(names)), dtype=np.float32)
        for i, v in enumerate(vals):
            for x in v:
                j = index.get(x) if kind == "list-str" else x
                if j is None or not (isinstance(j, int) and 0 <= j < len(names)):
                    raise ValueError(
                        f"split {split!r} of {source}: column {column!r} row {i} has label {x!r}, not one of the "
                        f"{len(names)} classes {names}"
                    )
                matrix[i, j] = 1.0
        out[split] = matrix
    return out, names


def given_names(given: Sequence[str] | None, own: list[str] | None) -> list[str] | None:
    """``label_names=`` checked (a list of distinct names that agrees with the data's own), else ``own``.

    Examples:
        >>> given_names(None, ["neg", "pos"])
        ['neg', 'pos']
    """
    if given is None:
        return own
    if isinstance(given, str):
        raise ValueError(f"label_names={given!r} is one string; pass a list of names, e.g. ['neg', 'pos']")
    names = [str(n) for n in given]
    if len(set(names)) != len(names):
        raise ValueError(f"label_names {names} repeats a name; each class needs its own")
    if own is not None and names != own:
        raise ValueError(
            f"label_names={names} disagrees with the dataset's own class names {own}; pass label_names=None to use them"
        )
    return names


def _first(out: dict[str, np.ndarray], bad: Any) -> tuple[str, int]:
    """The first (split, row) whose label is negative, else the first that ``bad`` flags."""
    for test in (lambda v: v < 0, bad):
        for split, values in out.items():
            rows = np.flatnonzero(test(values))
            if rows.size:
                return split, int(rows[0])
    return next(iter(out)), 0
