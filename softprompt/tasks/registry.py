"""The one table of tasks: each :class:`~softprompt.TaskType` to the family module that serves it.

Like transformers' ``SUPPORTED_TASKS``: the engine, the trainer and the inference layer call
:func:`family_for` and never branch on the task themselves. Adding a task is one family module and
one row here (``docs/architecture.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from softprompt.core.task import TaskType
from softprompt.tasks.question_answering import QuestionAnswering
from softprompt.tasks.sequence_classification import SequenceClassification
from softprompt.tasks.text_to_label import TextToLabel
from softprompt.tasks.token_classification import TokenClassification

if TYPE_CHECKING:
    from softprompt.core.task import Task
    from softprompt.tasks.base import TaskFamily

__all__ = ["TASK_FAMILIES", "family_for"]

_SEQUENCE = SequenceClassification()
_TEXT_TO_LABEL = TextToLabel()

TASK_FAMILIES: dict[TaskType, TaskFamily] = {
    TaskType.CLASSIFICATION: _SEQUENCE,
    TaskType.MULTI_LABEL: _SEQUENCE,
    TaskType.REGRESSION: _SEQUENCE,
    TaskType.TOKEN_CLASSIFICATION: TokenClassification(),
    TaskType.QUESTION_ANSWERING: QuestionAnswering(),
    TaskType.TEXT_TO_LABEL: _TEXT_TO_LABEL,
}
"""Every task type's family; the families' own ``task_types`` agree with it (a test checks)."""


def family_for(task: Task | None, *, generates: bool = False) -> TaskFamily:
    """The family that trains, scores and predicts ``task``.

    Args:
        task: The task; ``None`` (a head whose task is not recorded) reads as single-label classification.
        generates: The model is a language model run by a wrapper: its prompts, with classes or
            without, predict by generating (the text-to-label family).

    Examples:
        >>> from softprompt import Task
        >>> family_for(Task("qa")).name, family_for(None).name
        ('question-answering', 'sequence-classification')
    """
    if generates:
        return _TEXT_TO_LABEL
    return TASK_FAMILIES[task.type] if task is not None else _SEQUENCE
