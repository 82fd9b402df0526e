"""The data the prompt-tuning benchmark runs on: IMDb reviews (single texts) or SICK sentence pairs.

Every setup takes the same rows, ``split.shuffle(seed).select(range(n))`` of each split, normalised to
the columns ``text`` (``text_pair`` for pairs) and ``label`` (an int class id), and records a digest of
them so that the driver can check that the setups agree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: the benchmark drivers read WORKLOADS without loading datasets
    import datasets

__all__ = ["WORKLOADS", "Workload", "digest", "inputs", "load_subset", "real_lengths"]

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass(frozen=True)
class Workload:
    """One dataset as the benchmark reads it, and the sizes of its reported run."""

    name: str
    text_column: str
    pair_column: str | None  # a second text per row: tokenized as a pair
    label_column: str
    label_names: tuple[str, ...]  # class names in id order (string labels are mapped by this order)
    train_size: int
    test_size: int
    max_length: int  # prompted length, virtual tokens included

    @property
    def default_data(self) -> Path:
        return SHARED_DATA / self.name

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


WORKLOADS = {
    # the chapter's length, at least 512 train and 1,000 test reviews (64 steps of batch 8)
    "imdb": Workload("imdb", "text", None, "label", ("neg", "pos"), 512, 1000, 512),
    # sentence pairs, short: 128 steps of batch 8, the whole 2,000-pair test split
    "sick": Workload(
        "sick",
        "sentence_a",
        "sentence_b",
        "label",
        ("entailment", "neutral", "contradiction"),
        1024,
        2000,
        128,
    ),
}


def load_subset(
    workload: Workload, data: str, train_size: int, test_size: int, seed: int, *, via_softprompt: bool = False
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """The shared train and test rows (``text``, [``text_pair``,] ``label``).

    ``softprompt.load_data`` picks the same rows; the softprompt setups call it, the others use
    ``datasets`` alone, so that they do not pay for importing softprompt.
    """
    import datasets

    if via_softprompt:
        from softprompt import load_data

        loaded = load_data(
            data,
            text_column=workload.text_column,
            text_pair_column=workload.pair_column,
            label_column=workload.label_column,
            train_size=train_size,
            eval_split="test",
            eval_size=test_size,
            seed=seed,
            label_names=list(workload.label_names),
        )
        return loaded.train, loaded.eval
    files = {split: str(Path(data) / f"{split}.parquet") for split in ("train", "test")}
    splits = datasets.load_dataset("parquet", data_files=files)
    rename = {workload.text_column: "text", workload.label_column: "label"}
    if workload.pair_column:
        rename[workload.pair_column] = "text_pair"
    out = []
    for split, size in (("train", train_size), ("test", test_size)):
        rows = (
            splits[split]
            .select_columns(list(rename))
            .rename_columns({k: v for k, v in rename.items() if k != v})
        )
        rows = rows.shuffle(seed=seed).select(range(size))
        if rows.features["label"].dtype in (
            "string",
            "large_string",
        ):  # class names: ids in label_names order
            rows = rows.cast_column("label", datasets.ClassLabel(names=list(workload.label_names)))
        out.append(rows)
    return out[0], out[1]


def inputs(rows: datasets.Dataset) -> list[Any]:
    """The rows as ``predict`` takes them: strings, or ``(text, text_pair)`` tuples."""
    if "text_pair" in rows.column_names:
        return list(zip(rows["text"], rows["text_pair"]))
    return list(rows["text"])


def digest(*splits: datasets.Dataset) -> str:
    """A short hash of the rows' labels and texts, equal for every setup that saw the same rows."""
    h = hashlib.sha256()
    for split in splits:
        pairs = split["text_pair"] if "text_pair" in split.column_names else [None] * len(split)
        for text, pair, label in zip(split["text"], pairs, split["label"]):
            h.update(
                f"{int(label)}\t{text}".encode() + (b"" if pair is None else f"\t{pair}".encode()) + b"\n"
            )
    return h.hexdigest()[:16]


def real_lengths(
    tokenizer: Any, rows: datasets.Dataset, text_length: int, num_virtual_tokens: int
) -> list[int]:
    """Tokens each row puts through the model: its text truncated to ``text_length``, plus the virtual ones."""
    pairs = list(rows["text_pair"]) if "text_pair" in rows.column_names else None
    encoded = tokenizer(list(rows["text"]), pairs, truncation=True, max_length=text_length)
    return [len(ids) + num_virtual_tokens for ids in encoded["input_ids"]]
