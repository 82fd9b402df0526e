"""Where raw splits come from: a folder of split files, one file, ``<split>/<class>/*.txt`` folders, the Hub
(with a config), a ``datasets.Dataset``/``DatasetDict`` or a pandas ``DataFrame``. Nothing is checked here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import datasets
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["EVAL_SPLIT_DEFAULTS", "LAYOUTS", "held_out_splits", "load_splits"]

EVAL_SPLIT_DEFAULTS = ("validation", "test")  # eval_split="auto": the first of these the data has

# File suffix -> `datasets` builder. `.json` may hold JSON lines or one JSON array of records.
_BUILDERS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}
_SKIPPED_CLASS_DIRS = frozenset({"unsup"})  # an unlabelled folder (as some corpora ship) is not a class
LAYOUTS = (
    "a folder of split files (train.parquet and test.parquet, or .csv, .jsonl, .json), one such file, "
    "a folder of class folders (<root>/train/<class>/*.txt), a Hub dataset name, a datasets.Dataset/DatasetDict "
    "or a pandas DataFrame"
)


def load_splits(
    data: Any, wanted: list[str], text_column: str, label_column: str, *, config_name: str | None = None
) -> dict[str, datasets.Dataset]:
    """Load the ``wanted`` splits of ``data``, unchecked; ``"auto"`` means the first of
    :data:`EVAL_SPLIT_DEFAULTS` that exists. Returns ``{resolved split name: dataset}``.

    A ``Dataset`` or ``DataFrame`` is one split named ``"train"`` (as a single file is); a
    ``DatasetDict`` has its own split names.
    """
    if isinstance(data, pd.DataFrame):
        data = datasets.Dataset.from_pandas(data, preserve_index=False)
    if isinstance(data, datasets.Dataset):
        data = datasets.DatasetDict({"train": data})
    if isinstance(data, datasets.DatasetDict):
        hint = " A Dataset or DataFrame is one split, named 'train': pass eval_split=None, or a DatasetDict."
        return {s: data[s] for s in _resolve(wanted, set(data), "the given data", hint)}
    if not isinstance(data, (str, os.PathLike)):
        raise TypeError(
            f"data must be a path, a Hub name, a datasets.Dataset/DatasetDict or a DataFrame, got {type(data).__name__}"
        )
    return _load_path_or_hub(data, wanted, text_column, label_column, config_name)


def _load_path_or_hub(
    data: str | os.PathLike[str],
    wanted: list[str],
    text_column: str,
    label_column: str,
    config_name: str | None,
) -> dict[str, datasets.Dataset]:
    """Load the ``wanted`` splits of ``data`` (folder, file or Hub name), unchecked."""
    source = os.fspath(data)
    path = Path(source).expanduser()
    if path.is_file():
        _builder(path)  # fail on an unsupported suffix before anything else
        available = {"train": path}
    elif path.is_dir():
        available = _discover_splits(path)
    elif isinstance(data, os.PathLike) or _looks_like_path(source):
        raise FileNotFoundError(f"no such file or folder: {source!r}; pass {LAYOUTS}")
    else:
        return _load_hub(source, wanted, config_name)

    hint = (
        " A single file is one split, named 'train': pass eval_split=None, or a folder of split files."
        if path.is_file()
        else f" Expected {LAYOUTS}."
    )
    wanted = _resolve(wanted, set(available), source, hint)

    folder_splits = [s for s in wanted if available[s].is_dir()]
    classes = sorted({d.name for s in folder_splits for d in _class_dirs(available[s])})
    out = {}
    for split in wanted:
        item = available[split]
        if item.is_dir():
            out[split] = _load_class_folders(item, classes, text_column, label_column)
        else:
            out[split] = _read_file(item, split)
    return out


def _read_file(path: Path, split: str) -> datasets.Dataset:
    try:
        return datasets.load_dataset(_builder(path), data_files={split: str(path)}, split=split)
    except Exception as exc:
        if _has_no_rows(path):  # the builders fail on files without rows; report an empty split instead
            return datasets.Dataset.from_dict({})
        detail = exc.__cause__ or exc  # DatasetGenerationError keeps the reader's message in __cause__
        raise ValueError(
            f"could not read split {split!r} from {str(path)!r}: {type(detail).__name__}: {detail}"
        ) from exc


def _has_no_rows(path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            return pq.read_metadata(path).num_rows == 0
        except pa.ArrowException:
            return False
    if suffix == ".csv":
        try:
            return pd.read_csv(path, nrows=1).empty
        except pd.errors.EmptyDataError:
            return True
        except (ValueError, pd.errors.ParserError):
            return False
    return path.read_text(encoding="utf-8", errors="replace").strip() in ("", "[]")


def _looks_like_path(source: str) -> bool:
    """True when ``source`` cannot be a Hub name (``name`` or ``owner/name``)."""
    return (
        os.path.isabs(source)
        or source.startswith(("~", "."))
        or source.count("/") > 1
        or "\\" in source
        or Path(source).suffix.lower() in _BUILDERS
    )


def _builder(path: Path) -> str:
    try:
        return _BUILDERS[path.suffix.lower()]
    except KeyError:
        raise ValueError(
            f"cannot read {str(path)!r}: unsupported suffix {path.suffix!r}; use one of {sorted(_BUILDERS)}"
        ) from None


def _discover_splits(root: Path) -> dict[str, Path]:
    """Map split name -> split file (``<split>.<suffix>``) or ``<split>/<class>/*.txt`` folder."""
    found: dict[str, Path] = {}
    for child in sorted(root.iterdir()):
        if child.is_file() and child.suffix.lower() in _BUILDERS:
            name = child.stem
        elif child.is_dir() and _class_dirs(child):
            name = child.name
        else:
            continue
        if name in found:
            raise ValueError(
                f"split {name!r} is given twice in {root}: {found[name].name!r} and {child.name!r}; keep one"
            )
        found[name] = child
    return found


def _class_dirs(split_dir: Path) -> list[Path]:
    """The subfolders of ``split_dir`` holding ``*.txt`` files, sorted, ``unsup`` left out."""
    return [
        d
        for d in sorted(split_dir.iterdir())
        if d.is_dir() and d.name not in _SKIPPED_CLASS_DIRS and next(d.glob("*.txt"), None) is not None
    ]


def _load_class_folders(
    split_dir: Path, classes: list[str], text_column: str, label_column: str
) -> datasets.Dataset:
    """Read ``<split_dir>/<class>/*.txt`` into a dataset, one row per file, sorted by class then name."""
    texts: list[str] = []
    labels: list[int] = []
    for class_dir in _class_dirs(split_dir):
        files = sorted(class_dir.glob("*.txt"))
        texts.extend(f.read_text(encoding="utf-8") for f in files)
        labels.extend([classes.index(class_dir.name)] * len(files))
    features = datasets.Features(
        {text_column: datasets.Value("string"), label_column: datasets.ClassLabel(names=classes)}
    )
    return datasets.Dataset.from_dict({text_column: texts, label_column: labels}, features=features)


def _load_hub(name: str, wanted: list[str], config_name: str | None) -> dict[str, datasets.Dataset]:
    try:
        loaded = (
            datasets.load_dataset(name) if config_name is None else datasets.load_dataset(name, config_name)
        )
    except Exception as exc:  # offline: ConnectionError, OfflineModeIsEnabled, DatasetNotFoundError, ...
        raise FileNotFoundError(
            f"could not load {name!r}: it is not a local file or folder, and loading it from the Hugging Face Hub "
            f"failed ({type(exc).__name__}: {exc}). Without network access, pass {LAYOUTS}"
        ) from exc
    return {s: loaded[s] for s in _resolve(wanted, set(loaded), f"Hub dataset {name!r}", "")}


def _resolve(wanted: list[str], available: set[str], where: str, hint: str) -> list[str]:
    """``wanted`` with ``"auto"`` replaced by the first available default eval split; missing ones raise."""
    out = []
    for split in wanted:
        if split == "auto":
            found = [s for s in EVAL_SPLIT_DEFAULTS if s in available]
            if not found:
                raise ValueError(
                    f"{where} has no {' or '.join(EVAL_SPLIT_DEFAULTS)} split to evaluate on (splits: {sorted(available)}); "
                    f"pass eval_split= one of them, or None to train without evaluation.{hint}"
                )
            split = found[0]
        elif split not in available:
            raise ValueError(
                f"split {split!r} not found in {where}; available splits: {sorted(available)}. "
                f"Pass train_split=/eval_split= (or None to skip one).{hint}"
            )
        out.append(split)
    return out


def held_out_splits(
    data: Any, train_split: str | None, eval_split: str | None, holdout: float, seed: int,
    text_column: str, label_column: str, config_name: str | None,
) -> tuple[dict[str, datasets.Dataset], dict[str, str]]:  # fmt: skip
    """Split ``train_split`` (``"train"`` if ``None``) into training rows and a ``holdout`` share for evaluation.

    Returns ``({split name: rows}, {"train": name, "eval": name})``, as :func:`load_data` resolves splits;
    the evaluation split is named ``"<split>[holdout <fraction>]"``.
    """
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0 < holdout < 1:
        raise ValueError(f"holdout={holdout!r} must be a fraction of the rows in (0, 1), e.g. 0.1")
    if eval_split not in ("auto", None):
        raise ValueError(
            f"holdout carves the evaluation rows out of the training split; drop eval_split={eval_split!r} or holdout"
        )
    source = train_split or "train"
    (name,) = load_splits(data, [source], text_column, label_column, config_name=config_name).items()
    split, rows = name
    try:  # the rows depend only on the row count, holdout and seed
        parts = rows.train_test_split(test_size=holdout, seed=seed, shuffle=True)
    except ValueError as exc:
        raise ValueError(f"holdout={holdout} of split {split!r} ({len(rows)} rows): {exc}") from None
    held = f"{split}[holdout {holdout:g}]"
    resolved = {"train": split} if train_split is not None else {}
    rows_of = {split: parts["train"].flatten_indices(), held: parts["test"].flatten_indices()}  # plain tables
    return rows_of, {**resolved, "eval": held}
