"""`TaskFamily`: what one family of tasks adds to the shared engine, and nothing else.

Each family (sequence classification, token classification, question answering, text-to-label) is
one module beside this one holding a subclass: how its labels are checked, padded and scored, how
its predictions are decoded and evaluated. :mod:`softprompt.tasks.registry` maps every
:class:`~softprompt.TaskType` to one family, the way transformers' ``SUPPORTED_TASKS`` maps a task
name to its pipeline; the trainer and the inference layer ask the registry and hold no task branch.

A new family subclasses :class:`TaskFamily`, overrides what differs and adds one row to the table
(``docs/architecture.md`` walks through an example).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import datasets
    from torch import nn
    from transformers import PreTrainedTokenizerBase

    from softprompt.core.task import Task, TaskType

__all__ = ["Call", "EvalPredictor", "Labels", "Metrics", "TaskFamily", "padding_collator", "with_timing"]

# ``(wrapper, prepared inputs) -> (predicted, gold)``: a family's own evaluation step for ``Trainer``
EvalPredictor = Callable[[Any, dict[str, Any]], tuple[Any, Any]]
# a ``Trainer`` ``compute_metrics``: an ``EvalPrediction`` to ``{metric: value}``
Metrics = Callable[[Any], dict[str, float]]
# class names by id
Labels = Mapping[int, str] | None


@dataclass(frozen=True)
class Call:
    """One ``predict`` or ``evaluate_model`` call, as the inference layer hands it to a family.

    Attributes:
        task: The task read from the caller, the wrapper's prompt or the bare model (``None``: not recorded).
        id2label: Class (or tag) names by id.
        batching: ``batch_size``, ``max_length``, ``bf16``, ``max_batch_tokens`` (and ``progress`` when evaluating).
        options: The family's own options (:attr:`TaskFamily.predict_options`).
        temperature: Softmax temperature (single-label classification).
        prompt: A wrapper's named prompt, fixed for the call; ``None``: the active one, batch by batch.

    Examples:
        >>> Call(task=None, id2label={}, batching={"batch_size": 8}, prompt="sst2").prompt_names(2)
        ['sst2', 'sst2']
    """

    task: Task | None
    id2label: Mapping[int, str]
    batching: Mapping[str, Any]
    options: Mapping[str, Any] = field(default_factory=dict)
    temperature: float = 1.0
    prompt: str | None = None

    def prompt_names(self, count: int) -> list[str] | None:
        """One prompt name per input when a prompt is named, else ``None`` (the active prompt)."""
        return None if self.prompt is None or not count else [self.prompt] * count


def padding_collator(tokenizer: PreTrainedTokenizerBase) -> Callable[[list[dict[str, Any]]], Any]:
    """Pad each batch to its own longest example (dynamic padding), never to a fixed 512.

    Examples:
        >>> type(padding_collator(tok)).__name__  # doctest: +SKIP
        'DataCollatorWithPadding'
    """
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer, padding="longest")


def with_timing(metrics: Mapping[str, float], samples: int, seconds: float) -> dict[str, float]:
    """``Trainer``'s evaluation keys: ``eval_<metric>``, ``eval_samples``, ``eval_runtime``, ``eval_samples_per_second``.

    Examples:
        >>> with_timing({"accuracy": 0.5}, 4, 2.0)
        {'eval_accuracy': 0.5, 'eval_samples': 4, 'eval_runtime': 2.0, 'eval_samples_per_second': 2.0}
    """
    out = {f"eval_{k}": float(v) for k, v in metrics.items()}
    out.update(eval_samples=samples, eval_runtime=seconds, eval_samples_per_second=samples / seconds)
    return out


class TaskFamily:
    """The per-task parts of training, scoring and prediction; subclasses override what differs.

    Attributes:
        name: The family's name (``"sequence-classification"``...).
        task_types: The :class:`~softprompt.TaskType` values this family serves.
        eval_columns: Columns an untokenized evaluation dataset needs.
        predict_options: Extra keyword options its ``predict``/``evaluate`` take (question answering:
            ``stride``, ``max_answer_length``); any other is a ``TypeError``.
        metrics_need_windows: Its ``Trainer`` metrics read the tokenized evaluation rows (question
            answering maps windows back to answers); its inputs are ``(question, context)`` pairs.
        takes_metric_names: ``evaluate`` metrics named by the caller can score its outputs (class ids,
            0/1 decisions or values: :meth:`metric_inputs`); per-token and per-answer tasks need a callable.
        example_call: A ``predict`` line for a model card.

    Examples:
        >>> from softprompt.tasks import family_for
        >>> from softprompt import Task
        >>> family_for(Task("regression")).name
        'sequence-classification'
    """

    name: ClassVar[str] = "base"
    task_types: ClassVar[tuple[TaskType, ...]] = ()
    eval_columns: ClassVar[tuple[str, ...]] = ("text", "label")
    predict_options: ClassVar[tuple[str, ...]] = ()
    metrics_need_windows: ClassVar[bool] = False
    takes_metric_names: ClassVar[bool] = False
    example_call: ClassVar[str] = 'print(wrapper.predict(["An example text."]))'

    # ------------------------------------------------------------------ training

    def check_labels(
        self, dataset: datasets.Dataset | None, name: str, task: Task | None, num_labels: int | None
    ) -> None:
        """Raise ``ValueError`` naming ``name`` and the fix if the tokenized rows' labels do not fit the head."""

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Callable[[list[dict[str, Any]]], Any]:
        """The ``Trainer`` collator: pads each batch (and its labels) to its longest row."""
        return padding_collator(tokenizer)

    def tokenize(
        self, dataset: datasets.Dataset, model: Any, tokenizer: Any, **sizes: Any
    ) -> datasets.Dataset:
        """Training or evaluation rows for ``Trainer``: :func:`softprompt.tokenize_dataset`.

        ``sizes``: ``max_length``, ``num_virtual_tokens`` and ``stride`` (question answering's windows; the
        other families leave it out); ``model``: the wrapper or model the rows are for.
        """
        from softprompt.data import tokenize_dataset

        kept = {k: sizes[k] for k in ("max_length", "num_virtual_tokens") if k in sizes}
        return tokenize_dataset(dataset, tokenizer, **kept)

    def training_args(self, task: Task | None, args: Any = None) -> dict[str, Any]:
        """``TrainingArguments`` fields the family needs; with a caller's ``args``, check them and return ``{}``."""
        return {}

    def trainer_metrics(
        self, task: Task, id2label: Labels, *, eval_dataset: Any = None, tokenizer: Any = None
    ) -> Metrics:
        """The task's own ``compute_metrics`` for ``Trainer`` (an ``EvalPrediction`` to ``{metric: value}``)."""
        raise NotImplementedError(f"{type(self).__name__} has no Trainer metrics")

    def eval_predictor(self, model: Any) -> EvalPredictor | None:
        """A replacement for ``Trainer``'s evaluation outputs (text-to-label generates); ``None``: the logits."""
        return None

    # ------------------------------------------------------------------ scoring and prediction

    def metric_inputs(self, task: Task, predictions: Any, references: Any) -> tuple[Any, Any, str]:
        """Head outputs and labels as a user's ``evaluate`` metric takes them, and what they are, in words
        (only where :attr:`takes_metric_names`)."""
        raise NotImplementedError(f"{type(self).__name__} is scored per token or per answer")

    def score(
        self, task: Task, predictions: Any, references: Any, id2label: Mapping[int, str] | None = None
    ) -> dict[str, float]:
        """The task's metrics (:attr:`Task.metric_names`) of raw head outputs or decoded predictions."""
        raise NotImplementedError

    def check_options(self, options: Mapping[str, Any], task: Task | None) -> None:
        """Refuse prediction options the family does not take.

        Raises:
            TypeError: an option outside :attr:`predict_options`.
        """
        unknown = sorted(set(options) - set(self.predict_options))
        if unknown:
            kind = task.type.value if task is not None else "bare"
            raise TypeError(f"{unknown} are question-answering options; this is a {kind} model")

    def predict(self, model: nn.Module, tokenizer: Any, texts: Sequence[Any], call: Call) -> list[Any]:
        """One prediction per input, in input order (``[]`` for none), for the request ``call``."""
        raise NotImplementedError

    def evaluate(
        self, model: nn.Module, tokenizer: Any, dataset: datasets.Dataset, call: Call
    ) -> dict[str, float]:
        """The task's metrics on untokenized rows, timed: see :func:`with_timing`."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers for subclasses

    @staticmethod
    def timed(fn: Callable[[], dict[str, float]], samples: int) -> dict[str, float]:
        """Run ``fn`` and return its metrics with ``Trainer``'s timing keys (:func:`with_timing`)."""
        start = time.perf_counter()
        metrics = fn()
        return with_timing(metrics, samples, time.perf_counter() - start)
