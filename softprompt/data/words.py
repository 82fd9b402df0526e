"""Words to sub-word tokens for token classification, and back: every word is read at its first sub-word.

A word's tag is the label of its first sub-word; its other sub-words and the special tokens get
``IGNORE_INDEX``, so the loss and the metrics count each word once. Prediction reads each word at
the same position (what transformers' token-classification pipeline calls
``aggregation_strategy="first"``). Word boundaries come from the tokenizer's ``word_ids``, which
only fast tokenizers (backed by the ``tokenizers`` library) give.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import datasets

from softprompt.core.constants import IGNORE_INDEX

if TYPE_CHECKING:
    from transformers import BatchEncoding, PreTrainedTokenizerBase

__all__ = [
    "align_tags",
    "encode_words",
    "first_subwords",
    "require_fast_tokenizer",
    "split_words",
    "tokenize_words",
]

logger = logging.getLogger(__name__)

_WORD = re.compile(r"\S+")


def require_fast_tokenizer(tokenizer: Any, what: str = "token classification") -> None:
    """Refuse a tokenizer without ``word_ids`` (a slow, pure-Python one).

    Raises:
        ValueError: naming the tokenizer and the fix.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"{what} needs a fast tokenizer (backed by the tokenizers library: word_ids and offsets), got "
            f"{type(tokenizer).__name__}; load it with AutoTokenizer.from_pretrained(name), which gives the fast one "
            "where the model has it"
        )


def split_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """A text's words (runs of non-whitespace) and their ``(start, end)`` character offsets.

    Punctuation stays with its word (``"Paris,"`` is one word); separate it with a space to tag it
    apart, as CoNLL-style training data does.

    Examples:
        >>> split_words("EU  rejects German")
        (['EU', 'rejects', 'German'], [(0, 2), (4, 11), (12, 18)])
    """
    matches = list(_WORD.finditer(text))
    return [m.group() for m in matches], [m.span() for m in matches]


def encode_words(
    tokenizer: PreTrainedTokenizerBase, words: Sequence[Sequence[str]], max_length: int
) -> BatchEncoding:
    """Tokenize lists of words (``is_split_into_words``), truncated to ``max_length`` tokens, not padded.

    Raises:
        ValueError: a slow tokenizer (:func:`require_fast_tokenizer`).
    """
    require_fast_tokenizer(tokenizer)
    return tokenizer(
        [list(w) for w in words], is_split_into_words=True, truncation=True, max_length=max_length
    )


def first_subwords(word_ids: Sequence[int | None]) -> list[tuple[int, int]]:
    """``(token position, word index)`` of each word's first sub-word, in order.

    Words that truncation cut off (or that gave no token) are missing.

    Examples:
        >>> first_subwords([None, 0, 1, 1, 2, None])
        [(1, 0), (2, 1), (4, 2)]
    """
    out = []
    previous = None
    for position, word in enumerate(word_ids):
        if word is not None and word != previous:
            out.append((position, word))
        previous = word
    return out


def align_tags(word_ids: Sequence[int | None], tags: Sequence[int]) -> list[int]:
    """Token labels: each word's tag at its first sub-word, ``IGNORE_INDEX`` everywhere else.

    Examples:
        >>> align_tags([None, 0, 1, 1, None], [3, 5])
        [-100, 3, 5, -100, -100]
    """
    labels = [IGNORE_INDEX] * len(word_ids)
    for position, word in first_subwords(word_ids):
        labels[position] = tags[word]
    return labels


def tokenize_words(
    dataset: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    *,
    tokens_column: str = "tokens",
    tags_column: str = "tags",
) -> datasets.Dataset:
    """Tokenize word lists with their tags aligned (see :func:`align_tags`); what :func:`tokenize_dataset` does
    for token-classification data.

    Returns:
        The dataset with the tokenizer's columns, ``labels`` (one per token), every other column
        kept (``tokens_column`` and ``tags_column`` dropped) and an int ``length`` column. Words
        that truncation cut off are counted and logged as a warning: they are neither trained nor scored.

    Raises:
        ValueError: a slow tokenizer, or a missing column.
    """
    require_fast_tokenizer(tokenizer)
    missing = [c for c in (tokens_column, tags_column) if c not in dataset.column_names]
    if missing:
        raise ValueError(f"dataset has no column {missing[0]!r}; its columns are {dataset.column_names}")

    def encode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        encoded = encode_words(tokenizer, batch[tokens_column], max_length)
        rows = range(len(batch[tokens_column]))
        out = dict(encoded)
        out["labels"] = [align_tags(encoded.word_ids(i), batch[tags_column][i]) for i in rows]
        out["length"] = [len(ids) for ids in encoded["input_ids"]]
        out["_lost_words"] = [
            len(batch[tokens_column][i]) - len(first_subwords(encoded.word_ids(i))) for i in rows
        ]
        return out

    drop = [tokens_column, tags_column]
    tokenized = dataset.map(encode, batched=True, remove_columns=drop, desc="Tokenizing words")
    lost = tokenized["_lost_words"]
    if any(lost):
        logger.warning(
            "%d words in %d of %d rows do not fit the %d tokens left for text (max_length minus the virtual "
            "tokens) and are neither trained nor scored; raise max_length to keep them",
            sum(lost), sum(1 for n in lost if n), len(lost), max_length,
        )  # fmt: skip
    return tokenized.remove_columns("_lost_words")
