"""Task families, chosen by one table: what each task adds to training, scoring and prediction.

``registry.TASK_FAMILIES`` maps every :class:`~softprompt.TaskType` to a :class:`TaskFamily`
(``sequence_classification``, ``token_classification``, ``question_answering``, ``text_to_label``);
``scoring`` resolves a run's ``compute_metrics`` through it.

Examples:
    >>> from softprompt import Task
    >>> from softprompt.tasks import family_for
    >>> family_for(Task("token-classification")).eval_columns
    ('tokens', 'tags')
"""

from softprompt.tasks.base import TaskFamily
from softprompt.tasks.registry import TASK_FAMILIES, family_for
from softprompt.tasks.scoring import (
    build_compute_metrics,
    compute_task_metrics,
    default_best_metric,
    resolve_compute_metrics,
)

__all__ = [
    "TASK_FAMILIES",
    "TaskFamily",
    "build_compute_metrics",
    "compute_task_metrics",
    "default_best_metric",
    "family_for",
    "resolve_compute_metrics",
]
