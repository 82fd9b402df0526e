"""Tokenizing text-to-label data: each text's input ids and, as labels, the token ids of its class's word.

A seq2seq model (T5, BART) reads the text in its encoder and learns to generate the word: ``labels``
are the word's ids as the tokenizer makes target text (``tokenizer(text_target=word)``, ending with
``</s>``). A causal LM reads the text and learns to continue it with the word and EOS: its row is
``text ids + word ids + [EOS]`` and ``labels`` are ``-100`` on the text, the ids on the rest::

    causal input_ids   <s>  great  film  pos  itive  </s>       (Llama: the tokenizer's BOS first)
    causal labels      -100 -100   -100  pos  itive  </s>

Ids are concatenated, never re-tokenized from joined strings, so training and prediction see the
same tokens. Every word must come back from the tokenizer as itself (``decode(encode(word))``), or
an exact match of the generated text could never find it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import datasets

from softprompt.core.constants import DEFAULT_MAX_LENGTH, IGNORE_INDEX

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["encode_targets", "input_room", "tokenize_text_to_label"]

_SENTINEL_MAX_LENGTH = 1_000_000  # above this, model_max_length is transformers' "not set" value (1e30)


def encode_targets(
    tokenizer: PreTrainedTokenizerBase, words: Sequence[str], *, decoder_only: bool
) -> list[list[int]]:
    """Each class word's target ids: a causal LM's ``word ids + [EOS]``, a seq2seq model's ``text_target`` ids.

    Raises:
        ValueError: a causal LM's tokenizer without an EOS token, a word that tokenizes to nothing or
            does not decode back to itself, or two words with the same ids.

    Examples:
        >>> encode_targets(tok, ["negative", "positive"], decoder_only=True)  # doctest: +SKIP
        [[31591, 50256], [24561, 50256]]
    """
    eos = tokenizer.eos_token_id
    if decoder_only and eos is None:
        raise ValueError(
            f"{type(tokenizer).__name__} has no EOS token: a causal LM learns to end its class word with one"
        )
    out = []
    for word in words:
        if decoder_only:
            ids = [*tokenizer(word, add_special_tokens=False)["input_ids"], eos]
        else:
            ids = list(tokenizer(text_target=word)["input_ids"])
        back = tokenizer.decode(ids, skip_special_tokens=True).strip()
        if back != word.strip() or not back:
            raise ValueError(
                f"label word {word!r} comes back from the tokenizer as {back!r}, so a generation could never match "
                "it exactly; choose words the tokenizer keeps (e.g. lower case for an uncased vocabulary)"
            )
        out.append(ids)
    if len({tuple(ids) for ids in out}) != len(out):
        raise ValueError(f"label words {list(words)} share token ids; each class needs its own")
    return out


def input_room(
    tokenizer: PreTrainedTokenizerBase,
    max_length: int | None,
    num_virtual_tokens: int,
    targets: Sequence[Sequence[int]],
    *,
    decoder_only: bool,
) -> int:
    """Most tokens of a text: ``max_length`` (default the tokenizer's ``model_max_length``, else 512) less the
    virtual tokens and, for a causal LM, the longest target (which follows the text in the same row).

    Raises:
        ValueError: no room left for a text of at least one token.
    """
    if max_length is None:
        model_max = getattr(tokenizer, "model_max_length", None)
        unset = model_max is None or model_max > _SENTINEL_MAX_LENGTH
        max_length = DEFAULT_MAX_LENGTH if unset else int(model_max)
    longest = max(len(t) for t in targets) if decoder_only else 0
    room = max_length - num_virtual_tokens - longest
    if room < 1:
        raise ValueError(
            f"max_length={max_length} leaves no room for text after {num_virtual_tokens} virtual tokens"
            + (f" and a {longest}-token label" if longest else "")
            + "; raise max_length or lower num_virtual_tokens"
        )
    return room


def tokenize_text_to_label(
    dataset: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    words: Sequence[str],
    *,
    decoder_only: bool,
    max_length: int | None = None,
    num_virtual_tokens: int = 0,
    text_column: str = "text",
) -> datasets.Dataset:
    """Tokenize ``text``/``label`` rows for text-to-label training: inputs, and the class word's ids as labels.

    Args:
        dataset: One split of ``load_data(..., task="text-to-label")`` (``text`` and int ``label``).
        tokenizer: The model's tokenizer.
        words: Each class's target word, in class-id order
            (``softprompt.tasks.text_to_label.prompt_targets(wrapper)``).
        decoder_only: ``True`` for a causal LM (input and target in one row), ``False`` for T5/BART.
        max_length: Longest row the model runs, virtual tokens included (see :func:`input_room`);
            texts are truncated to fit, the target never is.
        num_virtual_tokens: The prompt's ``N``.
        text_column: The text column; dropped from the result, as ``label`` is.

    Returns:
        The dataset with ``input_ids``, ``attention_mask``, ``labels`` (lists of ids, ``-100`` where no
        loss) and ``length``; pad its batches with ``transformers.DataCollatorForSeq2Seq``
        (``train_prompt`` does).

    Raises:
        TypeError: ``dataset`` is not a ``datasets.Dataset``.
        ValueError: missing columns, a ``text_pair`` column (join pairs into one text), a class id
            without a word, or words the tokenizer cannot reproduce (:func:`encode_targets`).

    Examples:
        >>> train = tokenize_text_to_label(data.train, tokenizer, ["bad", "good"], decoder_only=False)
        >>> train.column_names
        ['input_ids', 'attention_mask', 'labels', 'length']
    """
    if not isinstance(dataset, datasets.Dataset):
        raise TypeError(f"tokenize_text_to_label needs one datasets.Dataset, got {type(dataset).__name__}")
    missing = {text_column, "label"} - set(dataset.column_names)
    if missing:
        raise ValueError(f"dataset lacks columns {sorted(missing)}; its columns are {dataset.column_names}")
    if "text_pair" in dataset.column_names:
        raise ValueError(
            "text-to-label reads one text per row: join each pair into one text (e.g. 'premise: ... hypothesis: ...')"
        )
    targets = encode_targets(tokenizer, words, decoder_only=decoder_only)
    room = input_room(tokenizer, max_length, num_virtual_tokens, targets, decoder_only=decoder_only)

    def encode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        encoded = tokenizer(batch[text_column], truncation=True, max_length=room)
        ids, labels = [], []
        for row, label in zip(encoded["input_ids"], batch["label"]):
            if not 0 <= label < len(targets):
                raise ValueError(f"label {label} has no word: {len(targets)} words {list(words)}")
            target = targets[label]
            ids.append(list(row) + target if decoder_only else list(row))
            labels.append([IGNORE_INDEX] * len(row) + target if decoder_only else list(target))
        return {
            "input_ids": ids,
            "attention_mask": [[1] * len(row) for row in ids],
            "labels": labels,
            "length": [len(row) for row in ids],
        }

    drop = [c for c in (text_column, "label", "token_type_ids") if c in dataset.column_names]
    return dataset.map(encode, batched=True, remove_columns=drop, desc="Tokenizing")
