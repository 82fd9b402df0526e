"""`predict`: one prediction per input for a wrapper or a bare model, whatever the task.

The one predict dispatch: the task (given, the wrapper prompt's, or the bare model's) picks its family
in :mod:`softprompt.tasks.registry`, and the family batches, runs and decodes. ``wrapper.predict``,
``softprompt predict`` and :func:`softprompt.evaluate_model` all come through here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from torch import nn

from softprompt.core.protocols import is_prompted
from softprompt.models import backbone
from softprompt.tasks.base import Call
from softprompt.tasks.registry import family_for

if TYPE_CHECKING:
    from softprompt.core.task import Task
    from softprompt.tasks.base import TaskFamily

__all__ = ["model_task", "predict"]


def predict(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[Any],
    *,
    batch_size: int = 32,
    max_length: int | None = None,
    bf16: bool = False,
    temperature: float = 1.0,
    id2label: dict[int, str] | None = None,
    task: Task | None = None,
    max_batch_tokens: int | str | None = "auto",
    prompt: str | None = None,
    **answer_options: Any,
) -> list[Any]:
    """Predict per text (or pair) with a fine-tuned model or a wrapper (see :func:`predict_logits`).

    For token classification each text is a string (split on whitespace into words) or a list of
    words, and its prediction is its list of :class:`~softprompt.Entity` spans
    (:func:`softprompt.tasks.entities.predict_entities`; ``temperature`` is not used). For question
    answering each input is a ``(question, context)`` pair and its prediction an
    :class:`~softprompt.Answer` (:func:`softprompt.tasks.answers.predict_answers`).

    Args:
        model: A fine-tuned ``transformers`` model, or a :class:`~softprompt.SoftPromptWrapper`.
        tokenizer: Its tokenizer.
        texts: Strings, ``(text, text_pair)`` tuples, word lists (token classification) or
            ``(question, context)`` pairs (question answering).
        batch_size: Most inputs per forward pass.
        max_length: Cap on tokens per input (default: the model's limit).
        bf16: Run the backbone in bf16 (see :func:`predict_logits`).
        max_batch_tokens: Most padded tokens per forward pass (see :func:`predict_logits`).
        temperature: Softmax temperature (classification); confidences are ``softmax(logits / T)``.
        id2label: Class names (default: the model's ``config.id2label``).
        task: The :class:`~softprompt.Task` (default: the wrapper's, or the one the model's
            ``config.problem_type`` and ``num_labels`` describe).
        prompt: For a wrapper, the prompt to use (default: the active one); fixed for the whole call, so
            another thread switching the active prompt cannot change it between batches.
        **answer_options: Question answering only: ``stride=`` and ``max_answer_length=``.

    Returns:
        One prediction per input, in input order (see :func:`softprompt.tasks.sequence_classification.decode`), a
        list of entities per input for token classification; ``[]`` for no inputs.

    Raises:
        TypeError: ``answer_options`` for a task other than question answering.

    Examples:
        >>> from transformers import AutoModelForSequenceClassification
        >>> fine_tuned = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
        >>> predict(fine_tuned, tokenizer, ["An absolutely fantastic performance."])
        [Prediction(label=..., label_name=..., confidence=...)]
        >>> predict(wrapper, tokenizer, ["a great product"], prompt="default")
        [Prediction(label=..., label_name=..., confidence=...)]
    """
    family, task = _family(model, task, prompt)
    family.check_options(answer_options, task)
    batching = {
        "batch_size": batch_size,
        "max_length": max_length,
        "bf16": bf16,
        "max_batch_tokens": max_batch_tokens,
    }
    call = Call(task, _names(model, id2label, prompt), batching, answer_options, temperature, prompt)
    return family.predict(model, tokenizer, texts, call)


def model_task(model: nn.Module, prompt: str | None = None) -> Task | None:
    """The task ``model`` predicts: a wrapper's prompt's, or the one a bare model's head and config describe.

    Examples:
        >>> model_task(wrapper).type.value  # doctest: +SKIP
        'classification'
    """
    if is_prompted(model):
        return model.slot(prompt).task
    return backbone.sequence_task(model)


def _family(model: nn.Module, task: Task | None, prompt: str | None) -> tuple[TaskFamily, Task | None]:
    """The family that predicts for ``model`` and the task it reads: a wrapped language model generates."""
    if task is None:
        task = model_task(model, prompt)
    return family_for(task, generates=is_prompted(model) and model.can_generate()), task


def _names(model: nn.Module, id2label: Mapping[int, str] | None, prompt: str | None) -> dict[int, str]:
    """Class names: the caller's, else a wrapper's prompt's, else the model config's."""
    if id2label is not None:
        return dict(id2label)
    if is_prompted(model) and model.slot(prompt).id2label:
        return dict(model.slot(prompt).id2label)
    return dict(getattr(getattr(model, "config", None), "id2label", None) or {})
