"""Word-level tags for token classification: the tag names (``O``, ``B-PER``, ``I-PER``...) and each row's tag ids.

Tags come as lists of names (``["B-ORG", "O"]``), lists of ids with a ``ClassLabel`` inside the
list feature (as Hub NER sets store them), or lists of ids named by ``label_names=``. Every row is
checked in full: its words are strings, it has one tag per word, and every tag is a known one, so
a stray tag is an error that names its split and row, never a new class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import datasets
import pyarrow as pa

from softprompt.core.task import normalize_id2label
from softprompt.data.labels import given_names, label_kind

__all__ = [
    "OUTSIDE_TAG",
    "TAG_PREFIXES",
    "check_tag_names",
    "check_word_columns",
    "checked_tag_names",
    "encode_tags",
]

OUTSIDE_TAG = "O"  # the tag of a word outside every entity
# B(egin), I(nside), E(nd), S(ingle): IOB1, IOB2, IOE and IOBES tags, the schemes seqeval's default mode reads
TAG_PREFIXES = ("B", "I", "E", "S")


def check_tag_names(names: Sequence[str], where: str = "tag names") -> None:
    """Every name is ``O`` or a prefix of :data:`TAG_PREFIXES`, a ``-`` and an entity type (``B-PER``).

    Entity-level scores and entity spans read the prefix and the type from the name, so names like
    ``LABEL_0`` or ``PER`` would be scored silently wrong; they are refused instead.

    Raises:
        ValueError: the names that are not tags.

    Examples:
        >>> check_tag_names(["O", "B-PER", "I-PER"])
        >>> check_tag_names(["O", "PER"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: tag names: ['PER'] are not tags like 'O', 'B-PER', 'I-PER' ...
    """
    bad = [n for n in names if n != OUTSIDE_TAG and not (len(n) > 2 and n[0] in TAG_PREFIXES and n[1] == "-")]
    if bad:
        raise ValueError(
            f"{where}: {bad[:5]} are not tags like 'O', 'B-PER', 'I-PER' (O, or B-/I-/E-/S- and an entity type), "
            "which entity-level scores need; rename them, or pass label_names= with such names for integer tags"
        )


def checked_tag_names(id2label: Any) -> dict[int, str]:
    """A token head's ``id2label`` with int keys, checked: present, and IOB-style names (:func:`check_tag_names`).

    Raises:
        ValueError: no names, or names that are not tags.

    Examples:
        >>> checked_tag_names({"0": "O", "1": "B-PER"})
        {0: 'O', 1: 'B-PER'}
    """
    names = normalize_id2label(id2label)
    if not names:
        raise ValueError("token classification needs its tag names: pass id2label={0: 'O', 1: 'B-PER', ...}")
    check_tag_names(list(names.values()), "id2label")
    return names


def check_word_columns(
    ds: datasets.Dataset, split: str, source: str, tokens_column: str, tags_column: str
) -> None:
    """The split has both columns, its words are lists of non-empty strings, and no row is missing.

    Raises:
        ValueError: a missing column (the message lists what there is), an empty split, a column
            that does not hold lists of strings, a missing row or an empty word (named by row).
    """
    where = f"split {split!r} of {source}"
    if len(ds) == 0:
        raise ValueError(f"{where} is empty; a split needs at least one row")
    for column, arg in ((tokens_column, "tokens_column"), (tags_column, "tags_column")):
        if column not in ds.column_names:
            raise ValueError(
                f"{where} has no column {column!r}; its columns are {ds.column_names}. Pass {arg}= to name the right one"
            )
        if ds.data.column(column).null_count:
            row = ds.data.column(column).to_pylist().index(None)
            raise ValueError(f"{where}: column {column!r} is missing at row {row}; drop or fill the row")
    words = ds.data.column(tokens_column)
    kind = words.type
    if not (
        (pa.types.is_list(kind) or pa.types.is_large_list(kind))
        and (pa.types.is_string(kind.value_type) or pa.types.is_large_string(kind.value_type))
    ):
        raise ValueError(
            f"{where}: column {tokens_column!r} holds {kind}, not lists of words; token classification needs one "
            "list of word strings per row (e.g. ['EU', 'rejects', 'German', 'call'])"
        )
    for row, values in enumerate(words.to_pylist()):
        for i, word in enumerate(values):
            if word is None or not word.strip():
                raise ValueError(
                    f"{where}: column {tokens_column!r} row {row} has an empty word {word!r} at position {i}; every "
                    "word needs a character the tokenizer keeps (its tag would otherwise be lost)"
                )


def encode_tags(
    raw: dict[str, datasets.Dataset],
    tokens_column: str,
    tags_column: str,
    source: str,
    label_names: Sequence[str] | None,
) -> tuple[dict[str, list[list[int]]], list[str]]:
    """Every split's tags as lists of tag ids, and the tag names.

    Names come from a ``ClassLabel`` inside the list feature, else ``label_names``, else the
    first split's (training, when it is loaded) string tags: ``O`` first, then the rest sorted.
    Integer tags without a ``ClassLabel`` need ``label_names``.

    Raises:
        ValueError: tags that are not lists of names or ids, integer tags without names, a row
            whose tag count differs from its word count, an unknown tag or id (named by split and
            row), or names that are not IOB-style tags (:func:`check_tag_names`).

    Examples:
        >>> ds = datasets.Dataset.from_dict({"tokens": [["EU", "rejects"]], "tags": [["B-ORG", "O"]]})
        >>> encode_tags({"train": ds}, "tokens", "tags", "data", None)
        ({'train': [[1, 0]]}, ['O', 'B-ORG'])
    """
    kinds = {s: label_kind(ds.features[tags_column], ds.data.column(tags_column)) for s, ds in raw.items()}
    rows = {s: ds.data.column(tags_column).to_pylist() for s, ds in raw.items()}
    if any(k != "list-class" for k in kinds.values()) and any(k == "list-class" for k in kinds.values()):
        raise ValueError(f"{source}: some splits store tags {tags_column!r} as a ClassLabel and some do not")
    kind = next(iter(kinds.values()))
    if kind == "list-class":
        own = [list(ds.features[tags_column].feature.names) for ds in raw.values()]
        if any(names != own[0] for names in own):
            raise ValueError(
                f"the splits of {source} disagree on their tag names: {own}; they must share one tag set"
            )
        names = given_names(label_names, own[0])
    elif kind == "list-str":
        first = {tag for row in next(iter(rows.values())) for tag in row if tag is not None}
        rest = sorted(first - {OUTSIDE_TAG})
        names = given_names(label_names, None) or ([OUTSIDE_TAG] if OUTSIDE_TAG in first else []) + rest
    elif kind == "list-int":
        names = given_names(label_names, None)
        if names is None:
            raise ValueError(
                f"{source}: column {tags_column!r} holds integer tags without names; pass label_names= with one "
                "tag name per id, in id order (e.g. ['O', 'B-PER', 'I-PER', ...])"
            )
    else:
        raise ValueError(
            f"{source}: column {tags_column!r} must hold one list of tags per row (tag names, or tag ids with a "
            f"ClassLabel or label_names=); found {sorted(set(kinds.values()))}"
        )
    check_tag_names(names, f"{source}: tags of column {tags_column!r}")
    index = {name: i for i, name in enumerate(names)}
    out: dict[str, list[list[int]]] = {}
    for split, tags in rows.items():
        words = raw[split].data.column(tokens_column).to_pylist()
        out[split] = [_row_ids(tag_row, len(w), index, kind, f"split {split!r} of {source}", tags_column, row)
                      for row, (tag_row, w) in enumerate(zip(tags, words))]  # fmt: skip
    return out, names


def _row_ids(tags: list[Any], num_words: int, index: dict[str, int], kind: str, where: str, column: str,
             row: int) -> list[int]:  # fmt: skip
    if len(tags) != num_words:
        raise ValueError(
            f"{where}: row {row} has {len(tags)} tags in column {column!r} for {num_words} words; each word needs "
            "exactly one tag"
        )
    ids = []
    for tag in tags:
        tag_id = index.get(tag) if kind == "list-str" else tag
        if not isinstance(tag_id, int) or not 0 <= tag_id < len(index):
            raise ValueError(
                f"{where}: column {column!r} row {row} has tag {tag!r}, not one of the {len(index)} tags {list(index)}"
            )
        ids.append(tag_id)
    return ids
