"""`Task`: what a head predicts (one class, several classes, a number per text; a tag per word; an answer span;
a class generated as its word).

One object decides the labels' form, the loss (through the model's ``config.problem_type``), the
metrics, the metric a run keeps its best checkpoint by, the ``AutoModelFor...`` class, and what
``predict`` returns. Prompt files record it, so a reloaded prompt scores and predicts the way it was trained.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from softprompt.core.constants import QA_OUTPUT_NAMES

__all__ = ["QA_OUTPUT_NAMES", "Task", "TaskType", "normalize_id2label"]


class TaskType(str, Enum):
    """The tasks; each value is also the CLI's ``--task`` choice.

    Attributes:
        CLASSIFICATION: One class of 2..N per text: cross-entropy.
        MULTI_LABEL: Any subset of N classes per text: per-class sigmoid and binary cross-entropy.
        REGRESSION: One real number per text: mean squared error on a single output.
        TOKEN_CLASSIFICATION: One tag (IOB2 ``B-PER``, ``I-PER``, ``O``...) per word: cross-entropy.
        QUESTION_ANSWERING: The answer's start and end token in a context: cross-entropy.
        TEXT_TO_LABEL: A language model generates the class's word: cross-entropy on it.

    Examples:
        >>> TaskType("multi-label") is TaskType.MULTI_LABEL
        True
        >>> [t.value for t in TaskType][:3]
        ['classification', 'multi-label', 'regression']
    """

    CLASSIFICATION = "classification"  # one class of 2..N per text: cross-entropy
    MULTI_LABEL = "multi-label"  # any subset of N classes per text: per-class sigmoid + BCE
    REGRESSION = "regression"  # one real number per text: MSE on a single output
    TOKEN_CLASSIFICATION = "token-classification"  # one tag (IOB2 B-PER, I-PER, O...) per word: cross-entropy
    QUESTION_ANSWERING = "question-answering"  # the answer's start and end token in a context: cross-entropy
    TEXT_TO_LABEL = "text-to-label"  # a language model generates the class's word: cross-entropy on it


# transformers' names for the same thing (``PretrainedConfig.problem_type``): the models compute
# their loss from it, and pipelines pick softmax / sigmoid / identity from it.
_PROBLEM_TYPES = {
    TaskType.CLASSIFICATION: "single_label_classification",
    TaskType.MULTI_LABEL: "multi_label_classification",
    TaskType.REGRESSION: "regression",
    # one class per token; *ForTokenClassification models always use cross-entropy and ignore it
    TaskType.TOKEN_CLASSIFICATION: "single_label_classification",
    # one start and one end position per window; *ForQuestionAnswering models always use cross-entropy too
    TaskType.QUESTION_ANSWERING: "single_label_classification",
    # one class per text, generated as its word; language models ignore problem_type (their loss is the tokens')
    TaskType.TEXT_TO_LABEL: "single_label_classification",
}
# what a run keeps its best checkpoint by, and whether higher is better
_BEST_METRIC = {
    TaskType.CLASSIFICATION: ("accuracy", True),
    TaskType.MULTI_LABEL: ("f1_micro", True),
    TaskType.REGRESSION: ("pearson", True),
    TaskType.TOKEN_CLASSIFICATION: ("f1", True),  # entity-level micro F1 (seqeval), the usual NER score
    TaskType.QUESTION_ANSWERING: ("f1", True),  # SQuAD's word-overlap F1, the max over the gold answers
    TaskType.TEXT_TO_LABEL: ("accuracy", True),  # the generated word is exactly the class's
}
_METRICS = {
    TaskType.CLASSIFICATION: ("accuracy", "f1"),
    TaskType.MULTI_LABEL: ("f1_micro", "f1_macro", "exact_match"),
    TaskType.REGRESSION: ("pearson", "spearman", "mse"),
    TaskType.TOKEN_CLASSIFICATION: ("precision", "recall", "f1", "accuracy"),  # entity-level; word accuracy
    TaskType.QUESTION_ANSWERING: ("exact_match", "f1"),  # SQuAD-normalised answer texts
    TaskType.TEXT_TO_LABEL: ("accuracy", "f1", "unknown"),  # exact match; macro-F1; share naming no class
}


@dataclass(frozen=True)
class Task:
    """A task: its type and, for multi-label, the probability above which a class is predicted.

    Args:
        type: ``"classification"``, ``"multi-label"``, ``"regression"``, ``"token-classification"``,
            ``"question-answering"`` or ``"text-to-label"`` (see :class:`TaskType`).
        threshold: Multi-label only: a class is predicted when its sigmoid probability is at
            least this (0.5, the usual choice, unless you tune it on validation data).

    Raises:
        ValueError: an unknown type, or a threshold outside (0, 1).

    Examples:
        >>> task = Task("regression")
        >>> task.problem_type, task.metric_names, task.best_metric
        ('regression', ('pearson', 'spearman', 'mse'), 'pearson')
        >>> Task.from_dict(Task("multi-label", threshold=0.3).to_dict())
        Task(type=<TaskType.MULTI_LABEL: 'multi-label'>, threshold=0.3)
        >>> Task("token-classification").best_metric, Task("token-classification").auto_model_class.__name__
        ('f1', 'AutoModelForTokenClassification')
        >>> Task("question-answering").metric_names, Task("qa").auto_model_class.__name__
        (('exact_match', 'f1'), 'AutoModelForQuestionAnswering')
        >>> Task("text-to-label").auto_model_class.__name__  # picks Seq2SeqLM or CausalLM from the config
        'AutoModelForTextToLabel'
    """

    type: TaskType = TaskType.CLASSIFICATION
    threshold: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", _task_type(self.type))
        threshold = self.threshold
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise TypeError(f"Task.threshold must be a number, got {type(threshold).__name__}")
        if not (math.isfinite(threshold) and 0 < threshold < 1):
            raise ValueError(f"Task.threshold must be strictly between 0 and 1, got {threshold!r}")
        object.__setattr__(self, "threshold", float(threshold))

    @property
    def problem_type(self) -> str:
        """transformers' ``config.problem_type`` for this task (decides the model's loss)."""
        return _PROBLEM_TYPES[self.type]

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Metrics reported for this task, in order."""
        return _METRICS[self.type]

    @property
    def best_metric(self) -> str:
        """The metric a run keeps its best checkpoint by."""
        return _BEST_METRIC[self.type][0]

    @property
    def greater_is_better(self) -> bool:
        """Whether a higher :attr:`best_metric` is better (``TrainingArguments.greater_is_better``).

        Examples:
            >>> Task("regression").greater_is_better
            True
        """
        return _BEST_METRIC[self.type][1]

    @property
    def is_classification(self) -> bool:
        """True for single-label classification (softmax over classes, temperature calibration)."""
        return self.type is TaskType.CLASSIFICATION

    @property
    def is_token_level(self) -> bool:
        """True for token classification: one label per word, logits ``(B, T, C)``."""
        return self.type is TaskType.TOKEN_CLASSIFICATION

    @property
    def is_question_answering(self) -> bool:
        """True for extractive question answering: start and end logits ``(B, T)`` over a context's tokens."""
        return self.type is TaskType.QUESTION_ANSWERING

    @property
    def is_text_to_label(self) -> bool:
        """True for classification by a language model that generates the class's word (Lester et al. 2021)."""
        return self.type is TaskType.TEXT_TO_LABEL

    @property
    def has_head(self) -> bool:
        """False for text-to-label: the language model's own output layer scores the class words, so no classifier
        head is trained or saved; True for every task with a head of its own."""
        return self.type is not TaskType.TEXT_TO_LABEL

    @property
    def has_class_names(self) -> bool:
        """Whether the head's outputs are named (classes, tags, start/end): all but regression's single value."""
        return self.type is not TaskType.REGRESSION

    @property
    def auto_model_class(self) -> type:
        """The ``transformers`` auto class whose head fits this task (build models for it with this).

        ``AutoModelForTokenClassification`` for token classification,
        ``AutoModelForQuestionAnswering`` for question answering, for text-to-label
        :class:`~softprompt.core.auto_model.AutoModelForTextToLabel` (``AutoModelForSeq2SeqLM`` for an
        encoder-decoder config, else ``AutoModelForCausalLM``), else ``AutoModelForSequenceClassification``.
        """
        import transformers  # here, not at import: the CLI reads tasks before it needs transformers

        if self.is_text_to_label:
            from softprompt.core.auto_model import AutoModelForTextToLabel

            return AutoModelForTextToLabel

        if self.is_token_level:
            return transformers.AutoModelForTokenClassification
        if self.is_question_answering:
            return transformers.AutoModelForQuestionAnswering
        return transformers.AutoModelForSequenceClassification

    def num_labels(self, label_names: list[str] | None) -> int:
        """Outputs of the head: 1 for regression, 2 for question answering (start, end), else one per class.

        Args:
            label_names: The class (or tag) names; not read for regression and question answering.

        Returns:
            The head's number of outputs (``config.num_labels``).

        Raises:
            ValueError: classification, multi-label or token classification without class names,
                or one class only.

        Examples:
            >>> Task("classification").num_labels(["neg", "pos"]), Task("regression").num_labels(None)
            (2, 1)
        """
        if self.type is TaskType.REGRESSION:
            return 1
        if self.is_question_answering:
            return len(QA_OUTPUT_NAMES)
        if not label_names or len(label_names) < 2:
            raise ValueError(
                f"a {self.type.value} task needs at least 2 classes, got {label_names!r}; "
                "for a numeric target use task='regression'"
            )
        return len(label_names)

    def to_dict(self) -> dict[str, Any]:
        """The task as plain JSON (what prompt files and ``run_config.json`` hold).

        Returns:
            ``{"type": ...}``, with ``"threshold"`` for multi-label.

        Examples:
            >>> Task("multi-label", threshold=0.3).to_dict()
            {'type': 'multi-label', 'threshold': 0.3}
        """
        out: dict[str, Any] = {"type": self.type.value}
        if self.type is TaskType.MULTI_LABEL:
            out["threshold"] = self.threshold
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Task:
        """Inverse of :meth:`to_dict`.

        Args:
            data: ``{"type": ..., "threshold": ...}`` as read from JSON.

        Returns:
            The task.

        Raises:
            ValueError: not a dict, unknown keys or bad values.

        Examples:
            >>> Task.from_dict({"type": "regression"})
            Task(type=<TaskType.REGRESSION: 'regression'>, threshold=0.5)
        """
        if not isinstance(data, dict):
            raise ValueError(
                f"a task must be a JSON object like {{'type': 'classification'}}, got {data!r:.80}"
            )
        unknown = sorted(set(data) - {"type", "threshold"})
        if unknown:
            raise ValueError(f"unknown task fields {unknown}; known: ['threshold', 'type']")
        if "type" not in data:
            raise ValueError("a task needs a 'type'")
        return cls(data["type"], data.get("threshold", 0.5))

    @classmethod
    def from_problem_type(cls, problem_type: str | None, num_labels: int | None) -> Task:
        """The task a ``transformers`` config describes, the way its models decide their loss.

        ``problem_type`` wins; without it one output means regression and more mean
        classification (as ``*ForSequenceClassification`` models infer it). Multi-label must be
        asked for explicitly (``problem_type="multi_label_classification"``). Token
        classification and question answering are never read from a ``problem_type`` (they are
        the model class's: see :func:`softprompt.models.backbone.sequence_task`).

        Args:
            problem_type: ``config.problem_type`` (``None`` where the config sets none).
            num_labels: ``config.num_labels``.

        Returns:
            The sequence task.

        Raises:
            ValueError: a ``problem_type`` transformers does not define for sequence heads.

        Examples:
            >>> Task.from_problem_type(None, 1).type.value, Task.from_problem_type(None, 3).type.value
            ('regression', 'classification')
        """
        if problem_type:
            for task_type, name in _PROBLEM_TYPES.items():
                if name == problem_type and task_type in (
                    TaskType.CLASSIFICATION,
                    TaskType.MULTI_LABEL,
                    TaskType.REGRESSION,
                ):
                    return cls(task_type)
            raise ValueError(
                f"unknown config.problem_type {problem_type!r}; known: {sorted(_PROBLEM_TYPES.values())}"
            )
        return cls(TaskType.REGRESSION if num_labels == 1 else TaskType.CLASSIFICATION)


def _task_type(value: Any) -> TaskType:
    if isinstance(value, TaskType):
        return value
    if isinstance(value, str):
        normalised = value.strip().lower().replace("_", "-")
        aliases = {
            "single-label": "classification",
            "single-label-classification": "classification",
            "multi-label-classification": "multi-label",
            "multilabel": "multi-label",
            "qa": "question-answering",
            "extractive-question-answering": "question-answering",
            "text2label": "text-to-label",
        }
        try:
            return TaskType(aliases.get(normalised, normalised))
        except ValueError:
            pass
    choices = ", ".join(repr(t.value) for t in TaskType)
    raise ValueError(f"task {value!r} is not one of {choices}")


def normalize_id2label(value: Any, where: str = "id2label") -> dict[int, str]:
    """``{class id: name}`` with int keys and str names, from a config's or a file's mapping (``None``: ``{}``).

    Strict, so that no two entries collapse into one and no name is made up: the keys are exactly the ids
    ``0..n-1``, as ints or as their canonical decimal strings (``"0"``, ``"12"``; not ``"00"``, ``" 1"`` or
    ``"+1"``), and every name is a non-empty string (a JSON ``null`` is not the name ``"None"``).

    Raises:
        ValueError: not a mapping, a key that is not a canonical class id, ids that are not ``0..n-1``, or a
            name that is not a non-empty string.

    Examples:
        >>> normalize_id2label({"0": "neg", "1": "pos"})
        {0: 'neg', 1: 'pos'}
        >>> normalize_id2label({"0": "a", "00": "b"})
        Traceback (most recent call last):
        ValueError: id2label has key '00', which is not a class id (0, 1, 2... written plainly)
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must map class ids to names, got {type(value).__name__} {value!r:.60}")
    out: dict[int, str] = {}
    for key, name in value.items():
        if isinstance(key, bool) or not (
            (isinstance(key, int) and key >= 0) or (isinstance(key, str) and key.isascii() and key.isdigit()
                                                      and str(int(key)) == key)
        ):  # fmt: skip
            raise ValueError(f"{where} has key {key!r}, which is not a class id (0, 1, 2... written plainly)")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}[{key!r}] is {name!r}; every class needs a name, a non-empty string")
        if int(key) in out:
            raise ValueError(f"{where} names class {int(key)} twice ({out[int(key)]!r} and {name!r})")
        out[int(key)] = name
    if sorted(out) != list(range(len(out))):
        raise ValueError(
            f"{where} must name the classes 0..{len(out) - 1}, one each; got ids {sorted(out)[:20]}"
        )
    return dict(sorted(out.items()))
