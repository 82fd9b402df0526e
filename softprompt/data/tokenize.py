"""Tokenizing checked splits for training, and checking tokenized splits before training.

Nothing is padded here: batches are padded to their own longest row by the collator.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import datasets

from softprompt.core.constants import DEFAULT_MAX_LENGTH
from softprompt.data.qa import tokenize_qa
from softprompt.data.words import tokenize_words

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["check_tokenized", "tokenize_dataset"]

logger = logging.getLogger(__name__)

_SENTINEL_MAX_LENGTH = 1_000_000  # above this, model_max_length is transformers' "not set" value (1e30)


def tokenize_dataset(
    dataset: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_length: int | None = None,
    num_virtual_tokens: int = 0,
    text_column: str = "text",
    text_pair_column: str | None = "text_pair",
    tokens_column: str = "tokens",
    stride: int | None = None,
) -> datasets.Dataset:
    """Tokenize a text column (or a pair of them) without padding, leaving room for the virtual tokens.

    Pairs are tokenized as pairs (``[CLS] a [SEP] b [SEP]``, ``token_type_ids`` kept), truncated
    longest-first. Token-classification data (a ``tokens_column`` of word lists and a ``tags``
    column of tag ids, as :func:`load_data` gives it) is tokenized word by word with each word's tag
    on its first sub-word and ``-100`` on the other sub-words and special tokens
    (:func:`softprompt.data.words.tokenize_words`; it needs a fast tokenizer); pad those batches
    with ``transformers.DataCollatorForTokenClassification``. Question-answering data (``question``,
    ``context`` and ``answers`` columns, no ``text_column``) becomes one row per window of each context,
    labelled with ``start_positions``/``end_positions`` (:func:`softprompt.data.qa.tokenize_qa`; it
    needs a fast tokenizer).

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
        text_pair_column: Second text of each pair, used when the dataset has this column
            (``load_data`` names it ``text_pair``); dropped too. ``None``: single texts.
        tokens_column: Column of word lists, used when the dataset has it and no ``text_column``.
        stride: Question answering only: tokens shared by consecutive windows of a long context
            (default ``min(128, room // 4)``, the room being ``max_length - num_virtual_tokens``).

    Returns:
        The dataset with the tokenizer's columns (``input_ids``, ``attention_mask``, ...),
        ``label`` renamed to ``labels``, every other column kept, and an int ``length`` column
        (tokens per row) for ``TrainingArguments(group_by_length=True)``.

    Raises:
        TypeError: ``dataset`` is not a ``datasets.Dataset`` (e.g. a whole ``DatasetDict``).
        ValueError: ``text_column`` (and ``tokens_column``) is missing, ``num_virtual_tokens`` is
            negative, fewer than 2 real tokens ([CLS] and [SEP]) would fit, or word lists with a
            slow tokenizer.

    Examples:
        >>> tokenized = tokenize_dataset(data.train, tokenizer, max_length=512, num_virtual_tokens=20)
        >>> tokenized.column_names
        ['labels', 'input_ids', 'token_type_ids', 'attention_mask', 'length']
    """
    if not isinstance(dataset, datasets.Dataset):
        raise TypeError(
            f"tokenize_dataset needs one datasets.Dataset, got {type(dataset).__name__}; pass a split such as data.train"
        )
    words = text_column not in dataset.column_names and tokens_column in dataset.column_names
    qa = text_column not in dataset.column_names and {"question", "context"} <= set(dataset.column_names)
    if text_column not in dataset.column_names and not (words or qa):
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
        max_length = DEFAULT_MAX_LENGTH if sentinel else int(model_max)
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

    if words:
        return tokenize_words(dataset, tokenizer, room, tokens_column=tokens_column)
    if qa:
        return tokenize_qa(dataset, tokenizer, room, stride=stride)
    if stride is not None:
        raise ValueError("stride= is for question-answering windows; this dataset has a text column")
    pair = text_pair_column if text_pair_column in dataset.column_names else None

    def encode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        second = batch[pair] if pair else None
        encoded = dict(tokenizer(batch[text_column], second, truncation=True, max_length=room))
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    drop = [text_column] + ([pair] if pair else [])
    tokenized = dataset.map(encode, batched=True, remove_columns=drop, desc="Tokenizing")
    if "label" in tokenized.column_names and "labels" not in tokenized.column_names:
        tokenized = tokenized.rename_column("label", "labels")  # the name Trainer passes to the model
    return tokenized


def check_tokenized(dataset: Any, name: str) -> None:
    """Check a tokenized split before training: a non-empty ``Dataset`` with ``input_ids`` and ``labels``.

    Question-answering windows have ``start_positions`` and ``end_positions`` instead of ``labels``.
    ``None`` passes (no evaluation data).

    Args:
        dataset: The tokenized split, or ``None``.
        name: What to call it in errors (``"train_dataset"``).

    Raises:
        TypeError: not a ``datasets.Dataset``.
        ValueError: empty, or without the columns training needs (the message names them).

    Examples:
        >>> check_tokenized(None, "eval_dataset")
        >>> check_tokenized(train_ds, "train_dataset")
        >>> check_tokenized(data.train, "train_dataset")
        Traceback (most recent call last):
        ValueError: train_dataset lacks columns ['input_ids', 'labels'] (has [...]); tokenize it with softprompt.tokenize_dataset
    """
    if dataset is None:
        return
    if not isinstance(dataset, datasets.Dataset):
        raise TypeError(
            f"{name} must be a datasets.Dataset (see softprompt.tokenize_dataset), got {type(dataset).__name__}"
        )
    if len(dataset) == 0:
        raise ValueError(f"{name} is empty")
    answers = {"start_positions", "end_positions"}
    labels = answers if answers & set(dataset.column_names) else {"labels"}
    missing = {"input_ids", *labels} - set(dataset.column_names)
    if missing:
        raise ValueError(
            f"{name} lacks columns {sorted(missing)} (has {dataset.column_names}); tokenize it with softprompt.tokenize_dataset"
        )
