"""Token classification's prediction: each word's logits, and the entities (type, character span, score) they tag.

Every word is read at its first sub-word: the position its tag was trained on, and what
transformers' token-classification pipeline calls ``aggregation_strategy="first"``. A text is a
string, split on whitespace into words (punctuation stays with its word: ``"Paris,"`` is one
word), or a list of words, whose offsets then point into the words joined by single spaces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from softprompt.core.predictions import Entity
from softprompt.data.tags import checked_tag_names
from softprompt.data.words import encode_words, first_subwords, require_fast_tokenizer, split_words
from softprompt.engine.logits import check_batching, forward_rows, input_limit, model_device, token_cap

__all__ = ["group_entities", "predict_entities", "validate_word_inputs", "word_logits"]


def _split_tag(tag: str) -> tuple[str, str]:
    """``("B", "PER")`` for ``B-PER``; a tag without a B-/I-/E-/S- prefix continues as ``("I", tag)``."""
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BIES":
        return tag[0], tag[2:]
    return "I", tag


def group_entities(
    text: str, spans: Sequence[tuple[int, int] | None], tags: Sequence[str | None], scores: Sequence[float]
) -> list[Entity]:
    """Entities from word-level tags, grouped as transformers' token-classification pipeline groups words.

    A word joins the entity before it when it has the same type and its prefix is not ``B-`` (nor
    ``S-``, and the entity did not end with ``E-``/``S-``); ``O`` words and words without a tag
    (``None``: cut off by truncation) belong to no entity. An entity's score is the mean of its
    words' scores.

    Args:
        text: The text the spans point into.
        spans: Each word's ``(start, end)`` in ``text``.
        tags: Each word's predicted tag name (``None``: no prediction).
        scores: Each word's tag probability.

    Examples:
        >>> group_entities("Ada Lovelace met Babbage", [(0, 3), (4, 12), (13, 16), (17, 24)],
        ...                ["B-PER", "I-PER", "O", "B-PER"], [0.9, 0.7, 0.99, 0.8])[0]
        Entity(entity_type='PER', start=0, end=12, text='Ada Lovelace', score=0.8)
    """
    groups: list[tuple[str, list[int]]] = []  # (type, word indices)
    last_prefix = ""
    for i, tag in enumerate(tags):
        if tag is None or tag == "O":
            last_prefix = ""
            continue
        prefix, kind = _split_tag(tag)
        # last_prefix is set only while the word before this one is in the last group
        if last_prefix and prefix in ("I", "E") and last_prefix not in ("E", "S") and groups[-1][0] == kind:
            groups[-1][1].append(i)
        else:
            groups.append((kind, [i]))
        last_prefix = prefix
    out = []
    for kind, words in groups:
        start, end = spans[words[0]][0], spans[words[-1]][1]  # type: ignore[index]
        out.append(Entity(kind, start, end, text[start:end], sum(scores[w] for w in words) / len(words)))
    return out


def validate_word_inputs(texts: Any) -> tuple[list[list[str]], list[list[tuple[int, int]]], list[str]]:
    """Each input's words, their ``(start, end)`` offsets and the text the offsets point into.

    Raises:
        TypeError: not a list of strings or of word lists.
        ValueError: an empty word in a word list.

    Examples:
        >>> validate_word_inputs(["Ada  met Babbage", ["New", "York"]])
        ([['Ada', 'met', 'Babbage'], ['New', 'York']], [[(0, 3), (5, 8), (9, 16)], [(0, 3), (4, 8)]], ['Ada  met Babbage', 'New York'])
    """
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise TypeError(
            f"texts must be a list of strings or of word lists, got {type(texts).__name__}; wrap a single text as [text]"
        )
    all_words, all_spans, joined = [], [], []
    for i, item in enumerate(texts):
        if isinstance(item, str):
            words, spans = split_words(item)
            text = item
        elif isinstance(item, (list, tuple)) and all(isinstance(w, str) for w in item):
            if any(not w.strip() for w in item):
                raise ValueError(f"texts[{i}] has an empty word; every word needs a character")
            words, text = list(item), " ".join(item)
            starts = [sum(len(w) + 1 for w in item[:k]) for k in range(len(item))]
            spans = [(s, s + len(w)) for s, w in zip(starts, item)]
        else:
            raise TypeError(
                f"texts[{i}] is {type(item).__name__} ({item!r:.60}), not a string or a list of words"
            )
        all_words.append(words)
        all_spans.append(spans)
        joined.append(text)
    return all_words, all_spans, joined


def word_logits(
    model: nn.Module,
    tokenizer: Any,
    words: Sequence[Sequence[str]],
    *,
    batch_size: int = 32,
    max_length: int | None = None,
    bf16: bool = False,
    prompt_names: Sequence[str] | None = None,
    progress: bool = False,
    max_batch_tokens: int | str | None = "auto",
) -> list[tuple[list[int], torch.Tensor]]:
    """Per list of words, ``(word indices, logits (K, C))``: each word's logits at its first sub-word.

    Words that truncation cut off (or that gave no token) are left out of ``word indices``; the
    input is truncated to fit with the virtual tokens, as :func:`softprompt.predict_logits` does.

    Args:
        model: A token-classification :class:`SoftPromptWrapper` or ``*ForTokenClassification`` model.
        tokenizer: Its fast tokenizer.
        words: One list of words per input.
        batch_size: As for
            :func:`softprompt.predict_logits`.
        max_length: As for
            :func:`softprompt.predict_logits`.
        bf16: As for
            :func:`softprompt.predict_logits`.
        prompt_names: As for
            :func:`softprompt.predict_logits`.
        progress: As for
            :func:`softprompt.predict_logits`.
        max_batch_tokens: As for
            :func:`softprompt.predict_logits`.

    Raises:
        ValueError: a slow tokenizer, ``batch_size`` < 1, or ``prompt_names`` of the wrong length.

    Examples:
        >>> [(index, logits.shape)] = word_logits(wrapper, tok, [["EU", "rejects", "German", "call"]])  # doctest: +SKIP
        >>> index, logits.shape  # doctest: +SKIP
        ([0, 1, 2, 3], torch.Size([4, 9]))
    """
    require_fast_tokenizer(tokenizer)
    check_batching(batch_size, prompt_names, len(words), "inputs")
    if not words:
        return []
    limit = input_limit(model, max_length, prompt_names[0] if prompt_names else None)
    encoded = encode_words(tokenizer, words, limit)
    rows = forward_rows(
        model, tokenizer, encoded, batch_size=batch_size, bf16=bf16, prompt_names=prompt_names,
        progress=progress, max_tokens=token_cap(max_batch_tokens, model_device(model)),
    )  # fmt: skip
    out = []
    for i, row in enumerate(rows):
        if row.dim() != 2:
            raise ValueError(f"{type(model).__name__} gives one row of logits per text, not per token")
        firsts = first_subwords(encoded.word_ids(i))
        positions = torch.tensor([p for p, _ in firsts], dtype=torch.long)
        out.append(([w for _, w in firsts], row[positions]))  # (K, C)
    return out


def predict_entities(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[Any],
    *,
    id2label: Mapping[int, str] | None = None,
    batch_size: int = 32,
    max_length: int | None = None,
    bf16: bool = False,
    prompt_names: Sequence[str] | None = None,
    max_batch_tokens: int | str | None = "auto",
) -> list[list[Entity]]:
    """The entities of each text: type, character span, text and score (see :class:`~softprompt.Entity`).

    Each word's tag is the most probable one at its first sub-word (softmax, no temperature);
    words are grouped into entities as transformers' ``pipeline("token-classification",
    aggregation_strategy="first")`` groups them (:func:`group_entities`).

    Args:
        model: A token-classification wrapper or model.
        tokenizer: Its fast tokenizer.
        texts: Strings (split on whitespace into words) or lists of words.
        id2label: Tag names (default: the model's ``config.id2label``); they must be IOB-style.
        batch_size: As for :func:`word_logits`.
        max_length: As for :func:`word_logits`.
        bf16: As for :func:`word_logits`.
        prompt_names: As for :func:`word_logits`.
        max_batch_tokens: As for :func:`word_logits`.

    Returns:
        One list of entities per text, in text order; ``[]`` for no texts.

    Raises:
        TypeError: inputs that are not strings or word lists.
        ValueError: a slow tokenizer, or tag names that are not IOB-style (``O``, ``B-PER``...).

    Examples:
        >>> predict_entities(wrapper, tok, ["EU rejects German call"])  # doctest: +SKIP
        [[Entity(entity_type='ORG', start=0, end=2, text='EU', score=0.98), Entity(entity_type='MISC', ...)]]
    """
    words, spans, joined = validate_word_inputs(texts)
    require_fast_tokenizer(tokenizer)
    # entity spans read the tags' prefixes and types: names like LABEL_0 are refused, not guessed at
    names = checked_tag_names(
        id2label if id2label is not None else getattr(getattr(model, "config", None), "id2label", None)
    )
    results = word_logits(
        model, tokenizer, words, batch_size=batch_size, max_length=max_length, bf16=bf16,
        prompt_names=prompt_names, max_batch_tokens=max_batch_tokens,
    )  # fmt: skip
    num_tags = results[0][1].shape[-1] if results else len(names)
    if sorted(names) != list(range(num_tags)):
        raise ValueError(f"id2label names tag ids {sorted(names)[:10]}, but the head has {num_tags} tags")
    out = []
    for text, text_spans, n, (index, logits) in zip(joined, spans, (len(w) for w in words), results):
        tags: list[str | None] = [None] * n
        scores = [0.0] * n
        confidence, ids = torch.softmax(logits, dim=-1).max(dim=-1)  # (K,)
        for word, tag_id, score in zip(index, ids.tolist(), confidence.tolist()):
            tags[word], scores[word] = names[tag_id], score
        out.append(group_entities(text, text_spans, tags, scores))
    return out
