"""Text-classification data: load a Hub dataset, split files, one file or aclImdb-style folders, checked.

:func:`load_text_classification` returns ``text``/``label`` datasets whose columns and labels were
validated before any training; :func:`tokenize_dataset` tokenizes them without padding.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["TextClassificationData", "check_tokenized", "load_text_classification", "tokenize_dataset"]

logger = logging.getLogger(__name__)

# File suffix -> `datasets` builder. `.json` may hold JSON lines or one JSON array of records.
_BUILDERS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}
_SKIPPED_CLASS_DIRS = frozenset({"unsup"})  # aclImdb's unlabelled reviews are not a class
_SENTINEL_MAX_LENGTH = 1_000_000  # above this, model_max_length is transformers' "not set" value (1e30)
_DEFAULT_MAX_LENGTH = 512  # what BERT-family encoders have position embeddings for
_FEATURES = datasets.Features({"text": datasets.Value("string"), "label": datasets.Value("int64")})
_LAYOUTS = (
    "a folder of split files (train.parquet and test.parquet, or .csv, .jsonl, .json), one such file, "
    "or an aclImdb-style folder (<root>/train/<class>/*.txt)"
)


@dataclass
class TextClassificationData:
    """The splits of a text-classification dataset and the names of its classes.

    Each split has exactly the columns ``text`` (string) and ``label`` (int64, in
    ``[0, num_labels)``). To rename the classes, use
    ``dataclasses.replace(data, label_names=[...])``.

    Args:
        train: The training split, or None when it was not requested.
        eval: The evaluation split, or None when it was not requested.
        label_names: Class names in label-id order.

    Raises:
        ValueError: ``label_names`` is empty or has duplicates.

    Example:
        >>> data = TextClassificationData(train=None, eval=None, label_names=["neg", "pos"])
        >>> data.id2label, data.num_labels
        ({0: 'neg', 1: 'pos'}, 2)
    """

    train: datasets.Dataset | None
    eval: datasets.Dataset | None
    label_names: list[str]

    def __post_init__(self) -> None:
        self.label_names = [str(name) for name in self.label_names]
        if not self.label_names:
            raise ValueError("label_names is empty; give one name per class, in label-id order")
        duplicates = sorted({n for n in self.label_names if self.label_names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"label_names {self.label_names} repeats {duplicates}; each class needs its own name"
            )

    @property
    def id2label(self) -> dict[int, str]:
        """``{label id: class name}``, as ``PretrainedConfig.id2label`` wants it."""
        return dict(enumerate(self.label_names))

    @property
    def label2id(self) -> dict[str, int]:
        """``{class name: label id}``, as ``PretrainedConfig.label2id`` wants it."""
        return {name: i for i, name in enumerate(self.label_names)}

    @property
    def num_labels(self) -> int:
        """The number of classes."""
        return len(self.label_names)


def load_text_classification(
    data: str | os.PathLike[str],
    *,
    text_column: str = "text",
    label_column: str = "label",
    train_split: str | None = "train",
    eval_split: str | None = "test",
    train_size: int | None = None,
    eval_size: int | None = None,
    seed: int = 42,
    label_names: Sequence[str] | None = None,
) -> TextClassificationData:
    """Load, check and subsample a text-classification dataset.

    ``data`` is one of:

    * a local folder of split files named after the splits: ``train.parquet`` and
      ``test.parquet`` (or ``.csv``, ``.jsonl``, ``.json``);
    * a single such file, which is one split named ``"train"`` (as in ``datasets``);
    * an aclImdb-style folder, ``<root>/<split>/<class>/*.txt``: classes are the subfolder names
      sorted alphabetically (aclImdb: ``neg`` = 0, ``pos`` = 1), ``unsup`` is skipped;
    * otherwise, a Hugging Face Hub dataset name such as ``"imdb"`` (needs the network).

    Subsets are reproducible: ``train_size=n`` keeps ``split.shuffle(seed=seed).select(range(n))``
    and ``eval_size`` the same with the same seed. Every split requested is checked in full before
    it is cut: the columns exist, the split is not empty, texts are strings, labels are integers in
    ``[0, num_labels)``.

    Class names come from, in order: the dataset's ``ClassLabel`` feature (or the aclImdb folder
    names); the ``label_names`` argument; ``["neg", "pos"]`` when ``data`` names IMDb ("imdb" in
    its last two path parts, e.g. ``data/imdb`` or ``imdb/train.parquet``) and the labels are 0/1;
    else ``["0", "1", ..., str(max label)]``.

    Args:
        data: Folder, file or Hub dataset name, as above.
        text_column: Column holding the texts; renamed to ``text``.
        label_column: Column holding the integer class ids; renamed to ``label``.
        train_split: Name of the training split, or None to load none.
        eval_split: Name of the evaluation split, or None to load none.
        train_size: Number of training rows to keep at random, or None for all.
        eval_size: Number of evaluation rows to keep at random, or None for all.
        seed: Seed of the shuffle that picks the subsets.
        label_names: Class names in label-id order, for data without a ``ClassLabel`` feature.

    Returns:
        A :class:`TextClassificationData` with ``text``/``label`` splits and the class names.

    Raises:
        FileNotFoundError: ``data`` looks like a path but does not exist, or is neither a local
            path nor a dataset the Hub could serve (offline, every Hub name fails this way).
        ValueError: a requested split or column is missing (the message lists what there is), a
            split is empty or its file cannot be read, a text is missing, a label is missing, not
            an integer or out of range (the message names it and its row), a size exceeds its
            split, ``train_split == eval_split``, or ``label_names`` disagrees with the dataset's
            own names.

    Example:
        >>> data = load_text_classification("../shared/data/imdb", train_size=5000, eval_size=1000)  # doctest: +SKIP
        >>> data.label_names, len(data.train), data.train.column_names  # doctest: +SKIP
        (['neg', 'pos'], 5000, ['text', 'label'])
    """
    if train_split is None and eval_split is None:
        raise ValueError("train_split and eval_split are both None; name at least one split to load")
    if train_split is not None and train_split == eval_split:
        raise ValueError(
            f"train_split and eval_split are both {train_split!r}; scores on training rows say nothing about "
            "new data. Pass another eval_split, or eval_split=None"
        )
    if text_column == label_column:
        raise ValueError(
            f"text_column and label_column are both {text_column!r}; they must be different columns"
        )
    sizes = {"train_size": train_size, "eval_size": eval_size}
    for arg, size in sizes.items():
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"{arg}={size!r} must be a positive int, or None to keep the whole split")

    wanted = [s for s in (train_split, eval_split) if s is not None]
    source = os.fspath(data)
    raw = _load_splits(data, wanted, text_column, label_column)

    labels = {split: _check_split(ds, split, source, text_column, label_column) for split, ds in raw.items()}
    names = _label_names(raw, labels, source, label_column, label_names)
    for split, values in labels.items():
        _check_range(values, names, split, source, label_column)

    kept: dict[str, datasets.Dataset | None] = {"train": None, "eval": None}
    for role, split in (("train", train_split), ("eval", eval_split)):
        if split is None:
            continue
        arg = f"{role}_size"
        ds = raw[split].select_columns([text_column, label_column])
        ds = ds.rename_columns({c: n for c, n in ((text_column, "text"), (label_column, "label")) if c != n})
        size = sizes[arg]
        if size is not None:
            if size > len(ds):
                raise ValueError(
                    f"{arg}={size} is larger than split {split!r} of {source}, which has {len(ds)} rows; "
                    f"pass at most {len(ds)}, or None to keep it all"
                )
            # Shuffling depends only on the row count and the seed, so these are the rows that
            # `raw_split.shuffle(seed=seed).select(range(size))` picks.
            ds = ds.shuffle(seed=seed).select(range(size))
        if ds.features != _FEATURES:  # ClassLabel, int32 or 1.0 labels; large_string texts (pandas 3)
            ds = ds.cast(_FEATURES)  # after the cut, as casting rewrites the rows
        kept[role] = ds
    result = TextClassificationData(train=kept["train"], eval=kept["eval"], label_names=names)
    logger.info(
        "loaded %s: train=%s eval=%s rows, labels %s",
        source,
        None if result.train is None else len(result.train),
        None if result.eval is None else len(result.eval),
        result.id2label,
    )
    return result


def tokenize_dataset(
    dataset: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_length: int | None = None,
    num_virtual_tokens: int = 0,
    text_column: str = "text",
) -> datasets.Dataset:
    """Tokenize a text column without padding, leaving room for the virtual tokens.

    Texts are truncated to ``max_length - num_virtual_tokens`` tokens (special tokens included),
    so that the prompted input fits ``max_length``. Nothing is padded: pad per batch with a
    collator such as ``transformers.DataCollatorWithPadding``.

    Args:
        dataset: One split, e.g. ``load_text_classification(...).train``.
        tokenizer: The model's tokenizer.
        max_length: Longest prompted input, virtual tokens included. Defaults to the tokenizer's
            ``model_max_length``, or 512 when that is unset (transformers' huge sentinel value).
        num_virtual_tokens: Number of soft-prompt vectors that will be inserted into each input.
        text_column: Column to tokenize; it is dropped from the result.

    Returns:
        The dataset with the tokenizer's columns (``input_ids``, ``attention_mask``, ...),
        ``label`` renamed to ``labels``, every other column kept, and an int ``length`` column
        (tokens per row) for ``TrainingArguments(group_by_length=True)``.

    Raises:
        TypeError: ``dataset`` is not a ``datasets.Dataset`` (e.g. a whole ``DatasetDict``).
        ValueError: ``text_column`` is missing, ``num_virtual_tokens`` is negative, or fewer
            than 2 real tokens ([CLS] and [SEP]) would fit.

    Example:
        >>> tokenized = tokenize_dataset(data.train, tokenizer, max_length=512, num_virtual_tokens=20)  # doctest: +SKIP
        >>> tokenized.column_names  # doctest: +SKIP
        ['labels', 'input_ids', 'token_type_ids', 'attention_mask', 'length']
    """
    if not isinstance(dataset, datasets.Dataset):
        raise TypeError(
            f"tokenize_dataset needs one datasets.Dataset, got {type(dataset).__name__}; pass a split such as data.train"
        )
    if text_column not in dataset.column_names:
        raise ValueError(
            f"dataset has no column {text_column!r}; its columns are {dataset.column_names}. Pass text_column="
        )
    if (
        isinstance(num_virtual_tokens, bool)
        or not isinstance(num_virtual_tokens, int)
        or num_virtual_tokens < 0
    ):
        raise ValueError(f"num_virtual_tokens={num_virtual_tokens!r} must be an int >= 0")
    model_max = getattr(tokenizer, "model_max_length", None)
    if max_length is None:
        sentinel = model_max is None or model_max > _SENTINEL_MAX_LENGTH
        max_length = _DEFAULT_MAX_LENGTH if sentinel else int(model_max)
    elif isinstance(max_length, bool) or not isinstance(max_length, int):
        raise ValueError(
            f"max_length={max_length!r} must be an int, or None for the tokenizer's model_max_length"
        )
    elif model_max is not None and max_length > model_max:
        logger.warning(
            "max_length=%d exceeds the tokenizer's model_max_length=%d; the model may lack positions for it",
            max_length,
            model_max,
        )
    room = max_length - num_virtual_tokens
    if room < 2:
        raise ValueError(
            f"max_length={max_length} with num_virtual_tokens={num_virtual_tokens} leaves {room} tokens for the "
            "text, but [CLS] and [SEP] alone need 2; raise max_length or lower num_virtual_tokens"
        )

    def encode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        encoded = dict(tokenizer(batch[text_column], truncation=True, max_length=room))
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    tokenized = dataset.map(encode, batched=True, remove_columns=[text_column], desc="Tokenizing")
    if "label" in tokenized.column_names and "labels" not in tokenized.column_names:
        tokenized = tokenized.rename_column("label", "labels")  # the name Trainer passes to the model
    return tokenized


# --- loading ---------------------------------------------------------------------------------------


def _load_splits(
    data: str | os.PathLike[str], wanted: list[str], text_column: str, label_column: str
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
        raise FileNotFoundError(f"no such file or folder: {source!r}; pass {_LAYOUTS}")
    else:
        return _load_hub(source, wanted)

    missing = [s for s in wanted if s not in available]
    if missing:
        hint = (
            " A single file is one split, named 'train': pass eval_split=None, or a folder of split files."
            if path.is_file()
            else f" Expected {_LAYOUTS}."
        )
        raise ValueError(
            f"split {missing[0]!r} not found in {source}; available splits: {sorted(available)}. "
            f"Pass train_split=/eval_split= (or None to skip one).{hint}"
        )

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
    """Map split name -> split file (``<split>.<suffix>``) or aclImdb-style class folder."""
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


def _load_hub(name: str, wanted: list[str]) -> dict[str, datasets.Dataset]:
    try:
        loaded = datasets.load_dataset(name)
    except Exception as exc:  # offline: ConnectionError, OfflineModeIsEnabled, DatasetNotFoundError, ...
        raise FileNotFoundError(
            f"could not load {name!r}: it is not a local file or folder, and loading it from the Hugging Face Hub "
            f"failed ({type(exc).__name__}: {exc}). Without network access, pass {_LAYOUTS}"
        ) from exc
    missing = [s for s in wanted if s not in loaded]
    if missing:
        raise ValueError(
            f"split {missing[0]!r} not found in Hub dataset {name!r}; available splits: {sorted(loaded)}. "
            "Pass train_split=/eval_split= (or None to skip one)"
        )
    return {s: loaded[s] for s in wanted}


# --- checks ----------------------------------------------------------------------------------------


def _check_split(
    ds: datasets.Dataset, split: str, source: str, text_column: str, label_column: str
) -> np.ndarray:
    """Check one raw split's columns and label types; return its labels as int64."""
    where = f"split {split!r} of {source}"
    if len(ds) == 0:
        raise ValueError(f"{where} is empty; a split needs at least one row")
    for column, arg in ((text_column, "text_column"), (label_column, "label_column")):
        if column not in ds.column_names:
            raise ValueError(
                f"{where} has no column {column!r}; its columns are {ds.column_names}. Pass {arg}= to name the right one"
            )
    texts = ds.data.column(text_column)
    if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
        raise ValueError(f"{where}: column {text_column!r} holds {texts.type}, not text; pass text_column=")
    if texts.null_count:
        row = texts.to_pylist().index(None)
        raise ValueError(f"{where}: column {text_column!r} has a missing text at row {row}; drop or fill it")

    column = ds.data.column(label_column)
    if column.null_count:
        row = column.to_pylist().index(None)
        raise ValueError(
            f"{where}: column {label_column!r} has a missing label (None) at row {row}; drop or fill it"
        )
    ids = "labels must be integer class ids 0..num_labels-1"
    if pa.types.is_integer(column.type):
        return column.to_numpy().astype(np.int64)
    if pa.types.is_floating(column.type):
        values = column.to_numpy()
        bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
        if bad.size:
            row = int(bad[0])
            raise ValueError(
                f"{where}: column {label_column!r} has non-integer label {float(values[row])!r} at row {row}; {ids}"
            )
        return values.astype(np.int64)
    raise ValueError(
        f"{where}: column {label_column!r} has non-integer label {column[0].as_py()!r} (type {column.type}) at "
        f"row 0; {ids}: map class names to ids first, e.g. dataset.class_encode_column({label_column!r})"
    )


def _label_names(
    raw: dict[str, datasets.Dataset],
    labels: dict[str, np.ndarray],
    source: str,
    label_column: str,
    given: Sequence[str] | None,
) -> list[str]:
    """Class names: the ClassLabel's, else ``given``, else neg/pos for IMDb, else "0".."max"."""
    own: dict[str, list[str]] = {
        split: list(ds.features[label_column].names)
        for split, ds in raw.items()
        if isinstance(ds.features[label_column], datasets.ClassLabel)
    }
    if len({tuple(names) for names in own.values()}) > 1:
        raise ValueError(
            f"the splits of {source} disagree on their class names: {own}; they must share one label set"
        )
    dataset_names = next(iter(own.values()), None)
    if given is not None:
        if isinstance(given, str):
            raise ValueError(
                f"label_names={given!r} is one string; pass a list of names, e.g. ['neg', 'pos']"
            )
        names = [str(n) for n in given]
        if dataset_names is not None and names != dataset_names:
            raise ValueError(
                f"label_names={names} disagrees with the dataset's own class names {dataset_names}; pass "
                "label_names=None to use them (rename afterwards with dataclasses.replace(data, label_names=...))"
            )
        return names
    if dataset_names is not None:
        return dataset_names
    seen = np.unique(np.concatenate(list(labels.values())))
    named_imdb = any("imdb" in part.lower() for part in Path(source).parts[-2:])  # folder, file or Hub name
    if named_imdb and set(seen.tolist()) <= {0, 1}:
        return ["neg", "pos"]
    names = [str(i) for i in range(max(int(seen.max()), 0) + 1)]
    if len(names) < 2:
        logger.warning(
            "%s has a single class (labels %s); pass label_names= to name all classes", source, seen.tolist()
        )
    return names


def _check_range(values: np.ndarray, names: list[str], split: str, source: str, label_column: str) -> None:
    bad = np.flatnonzero((values < 0) | (values >= len(names)))
    if bad.size:
        row = int(bad[0])
        hint = (
            " (-1 usually marks an unlabelled row, as in GLUE test splits: use a labelled split)"
            if values[row] == -1
            else ""
        )
        raise ValueError(
            f"split {split!r} of {source}: column {label_column!r} has label {int(values[row])} at row {row}, outside "
            f"[0, {len(names)}) for the {len(names)} classes {names}{hint}; fix the labels or pass label_names= "
            "with one name per class"
        )


def check_tokenized(dataset: Any, name: str) -> None:
    """Check a tokenized split before training: a non-empty ``Dataset`` with ``input_ids`` and ``labels``.

    ``None`` passes (no evaluation data). Raises ``TypeError``/``ValueError`` naming ``name``.

    Example:
        >>> check_tokenized(None, "eval_dataset")
    """
    if dataset is None:
        return
    if not isinstance(dataset, datasets.Dataset):
        raise TypeError(
            f"{name} must be a datasets.Dataset (see softprompt.tokenize_dataset), got {type(dataset).__name__}"
        )
    if len(dataset) == 0:
        raise ValueError(f"{name} is empty")
    missing = {"input_ids", "labels"} - set(dataset.column_names)
    if missing:
        raise ValueError(
            f"{name} lacks columns {sorted(missing)} (has {dataset.column_names}); tokenize it with softprompt.tokenize_dataset"
        )
