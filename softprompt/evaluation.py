"""Where a trained prompt or fine-tuned model is scored: the task's metrics on a text, text-pair, tagged-word or
question/context/answers dataset.

The same function scores the end of a training run and ``softprompt eval``, with the same
batching, so a reloaded prompt reproduces the run's accuracy to the last digit.
"""

from __future__ import annotations

import time
from typing import Any

import datasets
import torch
from torch import nn

from softprompt import backbone
from softprompt.inference import predict_logits
from softprompt.metrics import compute_task_metrics
from softprompt.metrics.tokens import tag_sequence_scores
from softprompt.task import Task

__all__ = ["evaluate_classifier", "evaluate_model"]


def evaluate_model(
    model: nn.Module,
    tokenizer: Any,
    dataset: datasets.Dataset,
    *,
    task: Task | None = None,
    batch_size: int = 64,
    max_length: int | None = None,
    bf16: bool = False,
    progress: bool = False,
    max_batch_tokens: int | str | None = "auto",
    **answer_options: Any,
) -> dict[str, float]:
    """The task's metrics (:attr:`Task.metric_names`) of ``model`` on a ``text`` [``text_pair``] ``label`` dataset.

    Token classification is scored on ``tokens`` ``tags`` rows, each word at its first sub-word
    (entity-level precision, recall and F1 with seqeval, and word accuracy); words that do not fit
    ``max_length`` with the virtual tokens are left out, as they are when ``Trainer`` evaluates,
    so both give the same numbers. Question answering is scored on ``question`` ``context``
    ``answers`` rows: each answer predicted over the context's windows
    (:func:`softprompt.qa_inference.predict_answers`, taking ``stride=`` and ``max_answer_length=``
    in ``answer_options``), SQuAD exact match and F1 against the row's gold answers; with the same
    ``max_length`` and stride it matches ``Trainer``'s evaluation of the windows.

    Args:
        model: A :class:`SoftPromptWrapper` or a ``transformers`` sequence-classification,
            token-classification or question-answering model.
        tokenizer: Its tokenizer (a fast one for token classification and question answering).
        dataset: Untokenized rows with ``text``, ``label`` and, for pairs, ``text_pair``
            (``load_data(...).eval``); ``tokens`` and ``tags`` for token classification;
            ``question``, ``context`` and ``answers`` for question answering.
        task: The :class:`~softprompt.Task` (default: the wrapper's, or the model config's).
        batch_size, max_length, bf16, max_batch_tokens: as for :func:`softprompt.predict_logits`.
        progress: Show a progress bar.

    Returns:
        ``eval_<metric>`` for each of the task's metrics (``eval_accuracy``, ``eval_f1`` for
        classification), ``eval_samples``, ``eval_runtime`` (s) and ``eval_samples_per_second``.

    Raises:
        TypeError: ``answer_options`` for a task other than question answering.
        ValueError: the dataset lacks the task's columns, or is empty.

    Example:
        >>> evaluate_model(wrapper, tok, data.eval)["eval_accuracy"]  # doctest: +SKIP
        0.874
    """
    if task is None:
        task = model.task if hasattr(model, "prompt_config") else backbone.sequence_task(model)
    if task is None:
        raise ValueError(f"{type(model).__name__} has no classification head to score")
    wanted = (
        {"tokens", "tags"} if task.is_token_level
        else {"question", "context", "answers"} if task.is_question_answering
        else {"text", "label"}
    )  # fmt: skip
    missing = wanted - set(dataset.column_names)
    if missing:
        raise ValueError(f"evaluation data lacks columns {sorted(missing)} (has {dataset.column_names})")
    if len(dataset) == 0:
        raise ValueError("evaluation data is empty")
    common = {"batch_size": batch_size, "max_length": max_length, "bf16": bf16, "progress": progress,
              "max_batch_tokens": max_batch_tokens}  # fmt: skip
    if task.is_question_answering:
        from softprompt.qa_inference import predict_answers

        start = time.perf_counter()
        pairs = list(zip(dataset["question"], dataset["context"]))
        answers = predict_answers(model, tokenizer, pairs, **common, **answer_options)
        references = [a["text"] for a in dataset["answers"]]
        metrics = compute_task_metrics(task, answers, references)
        return _with_timing(metrics, len(dataset), time.perf_counter() - start)
    if answer_options:
        raise TypeError(
            f"{sorted(answer_options)} are question-answering options; this is a {task.type.value} task"
        )
    if task.is_token_level:
        start = time.perf_counter()
        metrics = _score_words(model, tokenizer, dataset, common)
        return _with_timing(metrics, len(dataset), time.perf_counter() - start)
    if task.is_text_to_label:  # each class word generated (greedy), scored by exact match
        from softprompt.text_to_label import predict_labels

        start = time.perf_counter()
        options = {"batch_size": batch_size, "max_length": max_length, "bf16": bf16}
        predicted = predict_labels(model, dataset["text"], **options)
        metrics = compute_task_metrics(task, predicted, dataset["label"], id2label=model.id2label)
        return _with_timing(metrics, len(dataset), time.perf_counter() - start)
    inputs = (
        dataset["text"]
        if "text_pair" not in dataset.column_names
        else list(zip(dataset["text"], dataset["text_pair"]))
    )
    start = time.perf_counter()
    logits = predict_logits(model, tokenizer, inputs, **common)
    seconds = time.perf_counter() - start
    metrics = compute_task_metrics(task, logits.numpy(), torch.as_tensor(dataset["label"]).numpy())
    return _with_timing(metrics, len(dataset), seconds)


def _with_timing(metrics: dict[str, float], samples: int, seconds: float) -> dict[str, float]:
    out = {f"eval_{k}": float(v) for k, v in metrics.items()}
    out.update(eval_samples=samples, eval_runtime=seconds, eval_samples_per_second=samples / seconds)
    return out


def _score_words(
    model: nn.Module, tokenizer: Any, dataset: datasets.Dataset, common: dict[str, Any]
) -> dict[str, float]:
    """seqeval scores of each row's predicted tags against ``tags``, on the words that fit."""
    from softprompt.data.tags import checked_tag_names
    from softprompt.token_inference import word_logits

    names = checked_tag_names(model.id2label if hasattr(model, "prompt_config") else model.config.id2label)
    references = dataset["tags"]
    predicted, expected = [], []
    for (index, logits), tags in zip(word_logits(model, tokenizer, dataset["tokens"], **common), references):
        predicted.append([names[int(i)] for i in logits.argmax(dim=-1).tolist()])
        expected.append([names[int(tags[w])] for w in index])
    return tag_sequence_scores(predicted, expected)


evaluate_classifier = evaluate_model  # the 0.x name
