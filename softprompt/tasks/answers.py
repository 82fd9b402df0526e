"""Extractive question answering's prediction: (question, context) pairs to answers with character spans.

Each pair is cut into windows (:func:`softprompt.data.qa.encode_windows`); every window's start and
end logits give its best span (:func:`softprompt.models.spans.best_span`, scored as transformers'
question-answering pipeline scores it), and the pair's answer is the best span over its windows
(the first window wins a tie). The same decoding scores ``Trainer``'s evaluation windows
(:func:`qa_compute_metrics`) and :func:`softprompt.evaluate_model`, so both give the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import datasets
import numpy as np
import torch
from torch import nn

from softprompt.core.constants import IGNORE_INDEX
from softprompt.core.predictions import Answer
from softprompt.data.qa import context_offsets, encode_windows, null_position
from softprompt.engine.logits import (
    check_batching,
    forward_rows,
    input_limit,
    model_device,
    token_cap,
    validate_texts,
)
from softprompt.metrics.squad import squad_scores
from softprompt.models.spans import MAX_ANSWER_LENGTH, best_span, check_max_answer_length

__all__ = ["answers_from_windows", "predict_answers", "qa_compute_metrics", "validate_qa_inputs"]

_NO_ANSWER = Answer("", 0, 0, 0.0)  # a context without a single token to answer with


def validate_qa_inputs(inputs: Any) -> tuple[list[str], list[str]]:
    """``(questions, contexts)`` from a list of ``(question, context)`` pairs.

    Raises:
        TypeError: not a list of pairs of strings.

    Examples:
        >>> validate_qa_inputs([("Who met Bob?", "Ada met Bob.")])
        (['Who met Bob?'], ['Ada met Bob.'])
    """
    questions, contexts = validate_texts(inputs)
    if questions and contexts is None:
        raise TypeError("question answering takes (question, context) pairs, got single strings")
    return questions, contexts or []


def answers_from_windows(
    windows: Sequence[tuple[int, torch.Tensor, Sequence[tuple[int, int] | None], int]],
    contexts: Sequence[str],
    *,
    max_answer_length: int = MAX_ANSWER_LENGTH,
) -> list[Answer]:
    """One :class:`~softprompt.Answer` per context: the best span over its windows.

    Args:
        windows: Per window, ``(context index, logits (T, 2) start and end, offsets, [CLS] position)``;
            ``offsets`` are the window's character offsets, ``None`` outside the context.
        contexts: The contexts the offsets point into.
        max_answer_length: Longest answer in tokens.

    Examples:
        >>> logits = torch.tensor([[0.0, 0.0], [0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])  # start at 2, end at 3
        >>> answers_from_windows([(0, logits, [None, None, (0, 3), (4, 7)], 0)], ["Ada met Bob"])[0].text
        'Ada met'
    """
    best: list[tuple[float, int, int] | None] = [None] * len(contexts)
    for index, logits, offsets, null in windows:
        allowed = torch.tensor([o is not None for o in offsets], dtype=torch.bool)  # (T,)
        span = best_span(logits[:, 0], logits[:, 1], allowed, null=null, max_answer_length=max_answer_length)
        if span is None:
            continue
        start, end, score = span
        if best[index] is None or score > best[index][0]:  # type: ignore[index]
            best[index] = (score, offsets[start][0], offsets[end][1])  # type: ignore[index]
    return [
        _NO_ANSWER if found is None else Answer(context[found[1] : found[2]], found[1], found[2], found[0])
        for context, found in zip(contexts, best)
    ]


def predict_answers(
    model: nn.Module,
    tokenizer: Any,
    inputs: Sequence[Any],
    *,
    stride: int | None = None,
    max_answer_length: int = MAX_ANSWER_LENGTH,
    batch_size: int = 32,
    max_length: int | None = None,
    bf16: bool = False,
    prompt_names: Sequence[str] | None = None,
    progress: bool = False,
    max_batch_tokens: int | str | None = "auto",
) -> list[Answer]:
    """The answer to each ``(question, context)`` pair, with its character span in the context and its score.

    Args:
        model: A question-answering :class:`SoftPromptWrapper` or ``*ForQuestionAnswering`` model.
        tokenizer: Its fast tokenizer (offsets map tokens back to characters).
        inputs: ``(question, context)`` pairs.
        stride: Tokens shared by consecutive windows of a long context (default
            :func:`softprompt.data.qa.default_stride` of the room).
        max_answer_length: Longest answer in tokens (30, as in the SQuAD recipe).
        batch_size: As for
            :func:`softprompt.predict_logits` (windows are what is batched); ``max_length`` is the
            longest prompted window.
        max_length: As for
            :func:`softprompt.predict_logits` (windows are what is batched); ``max_length`` is the
            longest prompted window.
        bf16: As for
            :func:`softprompt.predict_logits` (windows are what is batched); ``max_length`` is the
            longest prompted window.
        progress: As for
            :func:`softprompt.predict_logits` (windows are what is batched); ``max_length`` is the
            longest prompted window.
        max_batch_tokens: As for
            :func:`softprompt.predict_logits` (windows are what is batched); ``max_length`` is the
            longest prompted window.
        prompt_names: For a wrapper, one prompt name per pair (mixed-prompt batches).

    Returns:
        One :class:`~softprompt.Answer` per pair, in input order; ``[]`` for no pairs.

    Raises:
        TypeError: inputs that are not (question, context) pairs.
        ValueError: a slow tokenizer, ``batch_size`` < 1, ``prompt_names`` of the wrong length, or a
            question that leaves too little room (:func:`softprompt.data.qa.encode_windows`).

    Examples:
        >>> predict_answers(wrapper, tok, [("Who met Bob?", "Ada met Bob in Paris.")])  # doctest: +SKIP
        [Answer(text='Ada', start=0, end=3, score=0.91)]
    """
    questions, contexts = validate_qa_inputs(inputs)
    check_max_answer_length(max_answer_length)
    check_batching(batch_size, prompt_names, len(questions), "pairs")
    if not questions:
        return []
    room = input_limit(model, max_length, prompt_names[0] if prompt_names else None)
    encoding = encode_windows(tokenizer, questions, contexts, room, stride)
    pairs = encoding["overflow_to_sample_mapping"]
    model_inputs = {
        k: encoding[k] for k in ("input_ids", "token_type_ids", "attention_mask") if k in encoding
    }
    rows = forward_rows(
        model, tokenizer, model_inputs, batch_size=batch_size, bf16=bf16, progress=progress,
        prompt_names=None if prompt_names is None else [prompt_names[p] for p in pairs],
        max_tokens=token_cap(max_batch_tokens, model_device(model)),
    )  # fmt: skip
    if rows[0].dim() != 2 or rows[0].shape[-1] != 2:
        raise ValueError(
            f"{type(model).__name__} gives no start and end logits per token: not a question-answering head"
        )
    cls_id = tokenizer.cls_token_id
    windows = [
        (pair, rows[w], context_offsets(encoding, w), null_position(encoding["input_ids"][w], cls_id))
        for w, pair in enumerate(pairs)
    ]
    return answers_from_windows(windows, contexts, max_answer_length=max_answer_length)


def qa_compute_metrics(
    eval_windows: datasets.Dataset, tokenizer: Any, *, max_answer_length: int = MAX_ANSWER_LENGTH
) -> Callable[[Any], dict[str, float]]:
    """A ``Trainer`` ``compute_metrics`` scoring answers (exact match, F1) from the windows' start and end logits.

    ``EvalPrediction`` has logits and labels but no offsets or contexts, so the function holds the
    tokenized evaluation windows and finds each prediction row's window by its input ids (``Trainer``
    may reorder rows: length-grouped evaluation): it needs ``TrainingArguments(include_for_metrics=
    ["inputs"])``, which :func:`softprompt.train_prompt` sets for question answering. Rows with the
    same input ids have the same logits, so which of them is which does not change a score.

    Args:
        eval_windows: What :func:`softprompt.tokenize_dataset` makes of question-answering rows
            (``input_ids``, ``example_index``, ``offset_mapping``, ``context``, ``answers``).
        tokenizer: The tokenizer that made them (its ``[CLS]`` and padding ids).
        max_answer_length: Longest answer in tokens.

    Raises:
        ValueError: at build time, windows without those columns; at call time, predictions without
            inputs, or a row that matches no window.

    Examples:
        >>> compute = qa_compute_metrics(test_windows, tok)  # doctest: +SKIP
        >>> compute(eval_pred)  # doctest: +SKIP
        {'exact_match': 0.5, 'f1': 0.62}
    """
    needed = {"input_ids", "example_index", "offset_mapping", "context", "answers"}
    missing = needed - set(eval_windows.column_names)
    if missing:
        raise ValueError(
            f"question-answering evaluation windows lack columns {sorted(missing)}; tokenize the evaluation rows "
            "with softprompt.tokenize_dataset, which keeps them"
        )
    ids = eval_windows["input_ids"]
    examples = eval_windows["example_index"]
    order = {e: i for i, e in enumerate(sorted(set(examples)))}  # example index -> answer slot
    contexts, references = [""] * len(order), [[] for _ in order]
    for w, (context, answers) in enumerate(zip(eval_windows["context"], eval_windows["answers"])):
        contexts[order[examples[w]]], references[order[examples[w]]] = context, answers["text"]
    offsets = [[tuple(o) if o is not None else None for o in row] for row in eval_windows["offset_mapping"]]
    nulls = [null_position(row, tokenizer.cls_token_id) for row in ids]
    pad = tokenizer.pad_token_id

    def compute(eval_pred: Any) -> dict[str, float]:
        inputs = getattr(eval_pred, "inputs", None)
        if inputs is None:
            raise ValueError(
                "question-answering scores need each row's input ids to find its window: pass "
                "TrainingArguments(include_for_metrics=['inputs'])"
            )
        start, end = (np.asarray(p) for p in eval_pred.predictions[:2])  # (N, T) each, padded with -100
        unmatched: dict[tuple[int, ...], list[int]] = {}
        for w, row in enumerate(ids):
            unmatched.setdefault(tuple(row), []).append(w)
        windows = []
        for r, row in enumerate(np.asarray(inputs).tolist()):
            while row and row[-1] in (
                IGNORE_INDEX,
                pad,
            ):  # Trainer's padding between batches, the collator's within
                row.pop()
            found = unmatched.get(tuple(row))
            if not found:
                raise ValueError(f"prediction row {r} matches none of the {len(ids)} evaluation windows")
            w = found.pop(0)
            n = len(ids[w])
            logits = torch.stack([torch.from_numpy(start[r, :n]), torch.from_numpy(end[r, :n])], -1).float()
            windows.append((order[examples[w]], logits, offsets[w], nulls[w]))  # logits (T_w, 2)
        if len(windows) != len(ids):  # an example without its windows would be scored as unanswered
            raise ValueError(f"got predictions for {len(windows)} of the {len(ids)} evaluation windows")
        answers = answers_from_windows(windows, contexts, max_answer_length=max_answer_length)
        return squad_scores([a.text for a in answers], references)

    return compute
