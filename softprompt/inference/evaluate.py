"""Where a trained prompt or fine-tuned model is scored: the task's metrics on a text, text-pair, tagged-word or
question/context/answers dataset.

The same function scores the end of a training run and ``softprompt eval``, with the same
batching, so a reloaded prompt reproduces the run's accuracy to the last digit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import datasets
from torch import nn

from softprompt.core.protocols import is_prompted
from softprompt.inference.dispatch import model_task
from softprompt.tasks.base import Call
from softprompt.tasks.registry import family_for

if TYPE_CHECKING:
    from softprompt.core.task import Task

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
    (:func:`softprompt.tasks.answers.predict_answers`, taking ``stride=`` and ``max_answer_length=``
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
        batch_size: as for :func:`softprompt.predict_logits`.
        max_length: as for :func:`softprompt.predict_logits`.
        bf16: as for :func:`softprompt.predict_logits`.
        max_batch_tokens: as for :func:`softprompt.predict_logits`.
        progress: Show a progress bar.
        **answer_options: Question answering only: ``stride=`` and ``max_answer_length=``.

    Returns:
        ``eval_<metric>`` for each of the task's metrics (``eval_accuracy``, ``eval_f1`` for
        classification), ``eval_samples``, ``eval_runtime`` (s) and ``eval_samples_per_second``.

    Raises:
        TypeError: ``answer_options`` for a task other than question answering.
        ValueError: the dataset lacks the task's columns, or is empty.

    Examples:
        >>> scores = evaluate_model(wrapper, tokenizer, data.eval)
        >>> sorted(scores)
        ['eval_accuracy', 'eval_f1', 'eval_runtime', 'eval_samples', 'eval_samples_per_second']
    """
    if task is None:
        task = model_task(model)
    if task is None:
        raise ValueError(f"{type(model).__name__} has no classification head to score")
    family = family_for(task)
    missing = set(family.eval_columns) - set(dataset.column_names)
    if missing:
        raise ValueError(f"evaluation data lacks columns {sorted(missing)} (has {dataset.column_names})")
    if len(dataset) == 0:
        raise ValueError("evaluation data is empty")
    family.check_options(answer_options, task)
    batching = {"batch_size": batch_size, "max_length": max_length, "bf16": bf16, "progress": progress,
                "max_batch_tokens": max_batch_tokens}  # fmt: skip
    names = model.id2label if is_prompted(model) else getattr(model.config, "id2label", None)
    return family.evaluate(model, tokenizer, dataset, Call(task, names or {}, batching, answer_options))


evaluate_classifier = evaluate_model  # the 0.x name
