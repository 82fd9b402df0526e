"""Question/context pairs to windows for extractive question answering, SQuAD style: question first, context cut with a stride.

A context longer than the room left by the question and the virtual tokens is cut into windows
that overlap by ``stride`` tokens (``truncation="only_second"``, ``return_overflowing_tokens``), so an
answer near a cut is whole in some window. Each window is labelled with its answer's start and end
token, or ``[CLS]`` for both when the answer is not (wholly) in it. The character offsets of the
context tokens (``offset_mapping``, ``None`` for question and special tokens) map predicted token
positions back to the exact substring of the context. Offsets need a fast tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import datasets

from softprompt.data.words import require_fast_tokenizer

if TYPE_CHECKING:
    from transformers import BatchEncoding, PreTrainedTokenizerBase

__all__ = [
    "DEFAULT_STRIDE",
    "answer_token_span",
    "context_offsets",
    "default_stride",
    "encode_windows",
    "null_position",
    "tokenize_qa",
]

# the SQuAD recipe's doc_stride (for windows of 384 tokens); shorter windows overlap by a quarter of their room
DEFAULT_STRIDE = 128
_CONTEXT = 1  # sequence id of the context: the second segment, after the question


def default_stride(room: int) -> int:
    """Tokens that consecutive windows of a long context share: ``min(128, room // 4)``.

    Examples:
        >>> default_stride(492), default_stride(60)
        (123, 15)
    """
    return min(DEFAULT_STRIDE, room // 4)


def encode_windows(
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[str],
    contexts: Sequence[str],
    room: int,
    stride: int | None = None,
) -> BatchEncoding:
    """Tokenize (question, context) pairs into windows of at most ``room`` tokens, not padded.

    Args:
        tokenizer: A fast tokenizer that pads on the right.
        questions: One question and its context per pair.
        contexts: One question and its context per pair.
        room: Longest window, special tokens included (the model's limit minus the virtual tokens).
        stride: Tokens shared by consecutive windows of one context (default :func:`default_stride`).

    Returns:
        The encoding with ``offset_mapping`` and ``overflow_to_sample_mapping`` (each window's pair).

    Raises:
        ValueError: a slow tokenizer, left padding, a tokenizer without a ``[CLS]``-like token (windows
            without the answer point there), a bad stride, or a question whose context needs several
            windows but is so long that no more than ``stride`` context tokens fit (named by its index).
    """
    require_fast_tokenizer(tokenizer, "question answering")
    if getattr(tokenizer, "padding_side", "right") != "right":
        raise ValueError(
            "question answering puts the question first and pads on the right; set tokenizer.padding_side = 'right'"
        )
    if getattr(tokenizer, "cls_token_id", None) is None:
        raise ValueError(
            f"{type(tokenizer).__name__} has no [CLS]-like token; question answering points a window without its "
            "answer there"
        )
    stride = default_stride(room) if stride is None else stride
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 0:
        raise ValueError(f"stride must be an int >= 0, got {stride!r}")
    lengths = tokenizer(list(questions), list(contexts), add_special_tokens=False)["input_ids"]  # no specials
    question_lengths = [len(ids) for ids in tokenizer(list(questions), add_special_tokens=False)["input_ids"]]
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    for i, (pair, length) in enumerate(zip(lengths, question_lengths)):
        room_left = room - specials - length  # context tokens per window
        if len(pair) + specials > room and room_left <= stride:  # the tokenizer would panic
            raise ValueError(
                f"question {i} has {length} tokens: with {specials} special tokens it leaves {room_left} of the "
                f"{room} tokens for each window of its context, which must be more than the stride ({stride}); "
                "shorten the question, lower the stride, or raise max_length"
            )
    return tokenizer(
        list(questions),
        list(contexts),
        truncation="only_second",
        max_length=room,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )


def context_offsets(encoding: BatchEncoding, window: int) -> list[tuple[int, int] | None]:
    """A window's ``(start, end)`` character offsets in the context; ``None`` for question and special tokens.

    Examples:
        >>> enc = encode_windows(tok, ["who?"], ["Ada met Bob"], room=16)  # doctest: +SKIP
        >>> context_offsets(enc, 0)  # doctest: +SKIP
        [None, None, None, None, (0, 3), (4, 7), (8, 11), None]
    """
    return [
        tuple(offset) if sequence_id == _CONTEXT else None
        for sequence_id, offset in zip(encoding.sequence_ids(window), encoding["offset_mapping"][window])
    ]


def null_position(input_ids: Sequence[int], cls_token_id: int) -> int:
    """Where a window's ``[CLS]`` is: the position that labels "the answer is not here" (0 for BERT-style inputs)."""
    ids = list(input_ids)
    return ids.index(cls_token_id) if cls_token_id in ids else 0


def answer_token_span(
    offsets: Sequence[tuple[int, int] | None], start_char: int, end_char: int, null: int
) -> tuple[int, int]:
    """The first and last token of the answer ``context[start_char:end_char]`` in a window, or ``(null, null)``.

    The answer counts as in the window only when the window's context tokens cover all of it.

    Examples:
        >>> answer_token_span([None, None, (0, 3), (4, 7), (8, 11), None], 4, 11, 0)
        (3, 4)
        >>> answer_token_span([None, None, (0, 3), (4, 7), None], 4, 11, 0)  # cut off: not in this window
        (0, 0)
    """
    positions = [k for k, offset in enumerate(offsets) if offset is not None]
    if not positions or offsets[positions[0]][0] > start_char or offsets[positions[-1]][1] < end_char:  # type: ignore[index]
        return null, null
    start = max(k for k in positions if offsets[k][0] <= start_char)  # type: ignore[index]
    end = min(k for k in positions if k >= start and offsets[k][1] >= end_char)  # type: ignore[index]
    return start, end


def tokenize_qa(
    dataset: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, room: int, *, stride: int | None = None
) -> datasets.Dataset:
    """One row per window of ``question``/``context``/``answers`` rows, labelled with the answer's token positions.

    Training uses each row's first answer (SQuAD's training split has one); a row without
    answers (unanswerable, as in SQuAD 2.0) points every window at ``[CLS]``.

    Args:
        dataset: Rows with ``question``, ``context`` and ``answers`` (``load_data(..., task="question-answering")``).
        tokenizer: A fast tokenizer.
        room: Longest window (``max_length - num_virtual_tokens``).
        stride: Tokens shared by consecutive windows (default :func:`default_stride`).

    Returns:
        ``input_ids``, ``attention_mask`` (``token_type_ids``), ``start_positions``, ``end_positions``,
        ``length``, and what scoring the windows' answers needs: ``example_index`` (the row),
        ``offset_mapping`` (``None`` outside the context), ``context`` and ``answers``. ``Trainer``
        passes only the first group to the model.

    Raises:
        ValueError: missing columns, or what :func:`encode_windows` refuses.
    """
    missing = {"question", "context", "answers"} - set(dataset.column_names)
    if missing:
        raise ValueError(
            f"question-answering data lacks columns {sorted(missing)} (has {dataset.column_names}); load it with "
            "load_data(..., task='question-answering')"
        )
    stride = default_stride(room) if stride is None else stride
    cls_id = tokenizer.cls_token_id

    def encode(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        encoding = encode_windows(tokenizer, batch["question"], batch["context"], room, stride)
        out: dict[str, list[Any]] = {
            k: encoding[k] for k in encoding if k not in ("offset_mapping", "overflow_to_sample_mapping")
        }
        columns = (
            "start_positions",
            "end_positions",
            "length",
            "example_index",
            "offset_mapping",
            "context",
            "answers",
        )
        out.update({k: [] for k in columns})
        for window, pair in enumerate(encoding["overflow_to_sample_mapping"]):
            offsets = context_offsets(encoding, window)
            null = null_position(encoding["input_ids"][window], cls_id)
            answers = batch["answers"][pair]
            if answers["text"]:
                first = answers["answer_start"][0]
                start, end = answer_token_span(offsets, first, first + len(answers["text"][0]), null)
            else:
                start = end = null
            out["start_positions"].append(start)
            out["end_positions"].append(end)
            out["length"].append(len(encoding["input_ids"][window]))
            out["example_index"].append(indices[pair])
            out["offset_mapping"].append([list(o) if o is not None else None for o in offsets])
            out["context"].append(batch["context"][pair])
            out["answers"].append(answers)
        return out

    return dataset.map(
        encode,
        batched=True,
        with_indices=True,
        remove_columns=dataset.column_names,
        desc="Tokenizing windows",
    )
