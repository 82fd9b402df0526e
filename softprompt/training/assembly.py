"""The one Trainer assembly that prompt tuning and fine-tuning share: checks, arguments, collator, metrics, run.

:func:`softprompt.train_prompt` and :func:`softprompt.finetune.finetune` differ only in what they train
(a wrapper's prompt and head, or every weight), the ``Trainer`` subclass and the recipe's defaults;
every task-dependent part comes from the task's family (:func:`softprompt.tasks.family_for`), so the
two paths check, pad and score every task the same way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import transformers
from transformers import TrainingArguments

from softprompt.data import check_tokenized
from softprompt.tasks import default_best_metric, family_for, resolve_compute_metrics
from softprompt.training.arguments import best_model_args, default_training_args
from softprompt.utils.heap import release_free_pages, retained_heap

if TYPE_CHECKING:
    import datasets
    from transformers import Trainer

    from softprompt.core.task import Task

__all__ = ["HEAP_TRIM_EVERY", "TrainerRun", "TrimHeap", "check_datasets", "run_trainer", "train_with_trainer"]

HEAP_TRIM_EVERY = 16  # optimizer steps between trims of a kept heap (TrimHeap)


def check_datasets(
    task: Task | None, num_labels: int | None, train_dataset: Any, eval_dataset: Any | None
) -> None:
    """Both datasets are tokenized and their labels fit the head (the task family's check), before anything runs.

    Raises:
        TypeError, ValueError: the first misfit, naming the dataset and the fix.

    Examples:
        >>> check_datasets(Task("classification"), 2, train_ds, None)  # doctest: +SKIP
    """
    family = family_for(task)
    for dataset, name in ((train_dataset, "train_dataset"), (eval_dataset, "eval_dataset")):
        check_tokenized(dataset, name)
        family.check_labels(dataset, name, task, num_labels)


@dataclass
class TrainerRun:
    """What :func:`train_with_trainer` leaves: the trainer, its arguments, ``train()``'s output, the wall
    seconds of ``train()`` and the final evaluation of the kept model (``{}`` without eval data)."""

    trainer: Trainer
    args: TrainingArguments
    train_output: Any
    seconds: float
    eval_metrics: dict[str, float]


def train_with_trainer(
    trainer_class: Callable[..., Trainer],
    model: torch.nn.Module,
    tokenizer: transformers.PreTrainedTokenizerBase,
    train_dataset: datasets.Dataset,
    eval_dataset: datasets.Dataset | None,
    *,
    task: Task | None,
    id2label: Mapping[int, str] | None,
    output_dir: str | os.PathLike[str],
    recipe: Mapping[str, Any],
    training_args: TrainingArguments | None = None,
    overrides: Mapping[str, Any] | None = None,
    metric_for_best_model: str | None = None,
    compute_metrics: Any | None = None,
    data_collator: Any | None = None,
    callbacks: list[transformers.TrainerCallback] | None = None,
    resume_from_checkpoint: str | bool | None = None,
    retain_heap: bool = False,
) -> TrainerRun:
    """Assemble ``Trainer`` for ``task`` and train: the one path of prompt tuning and fine-tuning.

    Args:
        trainer_class: The ``Trainer`` (sub)class or a partial of it.
        model: What it trains.
        tokenizer: The tokenizer that pads its batches.
        train_dataset: Tokenized training rows, checked already (:func:`check_datasets`).
        eval_dataset: Tokenized evaluation rows, checked already.
        task: The head's task (the family's metrics need it).
        id2label: The head's class names.
        output_dir: Checkpoints and the final artefact.
        recipe: The caller's ``TrainingArguments`` defaults (learning rate, epochs, batch size...).
        training_args: Full ``TrainingArguments`` instead of ``recipe`` (checked for what the task needs).
        overrides: ``TrainingArguments`` fields to change in the recipe.
        metric_for_best_model:
            as for :func:`softprompt.train_prompt`.
        compute_metrics:
            as for :func:`softprompt.train_prompt`.
        data_collator:
            as for :func:`softprompt.train_prompt`.
        callbacks:
            as for :func:`softprompt.train_prompt`.
        resume_from_checkpoint:
            as for :func:`softprompt.train_prompt`.
        retain_heap: Train and score inside :func:`softprompt.utils.heap.retained_heap` (large activations
            reuse the heap's pages instead of faulting fresh ones in each step).

    Raises:
        TypeError: both ``training_args`` and ``overrides`` (the overrides would be silently ignored).
        ValueError: a metric the task does not compute, or arguments the task cannot train with.

    Examples:
        >>> run = train_with_trainer(Trainer, model, tok, train, test, task=Task(), id2label=None,
        ...                          output_dir="runs/x", recipe={"learning_rate": 2e-5})  # doctest: +SKIP
    """
    family = family_for(task)
    overrides = dict(overrides or {})
    if training_args is not None and overrides:
        raise TypeError(
            f"pass either training_args or TrainingArguments overrides, not both (got {sorted(overrides)})"
        )
    # what the task needs of Trainer (question answering: its label_names and the input ids its metrics read)
    overrides = {**family.training_args(task, training_args), **overrides}
    # raises for a metric the task does not compute (unless compute_metrics is the caller's own)
    best = best_model_args(
        task,
        metric_for_best_model or default_best_metric(compute_metrics),
        custom_metrics=compute_metrics is not None,
        overrides=overrides,
    )
    args = training_args or default_training_args(
        output_dir, **recipe, **best, has_eval=eval_dataset is not None, **overrides
    )
    metrics = resolve_compute_metrics(
        compute_metrics, task, id2label, eval_dataset=eval_dataset, tokenizer=tokenizer
    )
    trainer, train_output, seconds, eval_metrics = run_trainer(
        trainer_class, model, tokenizer, args, train_dataset, eval_dataset, compute_metrics=metrics,
        data_collator=data_collator or family.collator(tokenizer), callbacks=callbacks,
        resume_from_checkpoint=resume_from_checkpoint, retain_heap=retain_heap,
    )  # fmt: skip
    return TrainerRun(trainer, args, train_output, seconds, eval_metrics)


class TrimHeap(transformers.TrainerCallback):
    """Every ``every`` optimizer steps and after each evaluation, a kept heap's free pages go back to the system.

    :func:`softprompt.utils.heap.retained_heap` keeps freed blocks for the next step; length-grouped batches of
    changing length fragment the heap: without trims, a fine-tuning run (batch 32, up to 512 tokens, bf16) held
    19.6 GB after 250 steps, where six steps of its longest shape had held 14.7 (docs/benchmarks.md). A trim costs
    the next step its page faults again.
    """

    def __init__(self, every: int = HEAP_TRIM_EVERY) -> None:
        self.every = every

    def on_step_end(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        """Trim every ``every`` optimizer steps."""
        if state.global_step % self.every == 0:
            release_free_pages()

    def on_evaluate(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        """Trim after an evaluation: its batches are shaped unlike training's."""
        release_free_pages()


def run_trainer(
    trainer_class: Callable[..., Trainer],
    model: torch.nn.Module,
    tokenizer: transformers.PreTrainedTokenizerBase,
    args: TrainingArguments,
    train_dataset: datasets.Dataset,
    eval_dataset: datasets.Dataset | None,
    *,
    compute_metrics: Callable[[Any], dict[str, float]],
    data_collator: Callable[[list[dict[str, Any]]], Any],
    callbacks: list[transformers.TrainerCallback] | None = None,
    resume_from_checkpoint: str | bool | None = None,
    retain_heap: bool = False,
) -> tuple[Trainer, Any, float, dict[str, float]]:
    """Build ``trainer_class``, train (resuming from the newest *complete* checkpoint for ``True``), score the kept model.

    Returns:
        ``(trainer, train output, wall seconds of Trainer.train, final eval metrics or {})``.
    """
    if resume_from_checkpoint is True:  # the newest *complete* checkpoint, not merely the newest folder
        from softprompt.training.checkpoints import latest_complete_checkpoint

        resume_from_checkpoint = latest_complete_checkpoint(args.output_dir)
        if resume_from_checkpoint is None:
            raise ValueError(f"nothing to resume: {args.output_dir!r} holds no complete checkpoint")
    # Trainer(full_determinism=True) switches torch to deterministic kernels process-wide: only for this run
    deterministic = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    trainer = trainer_class(
        model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        data_collator=data_collator,
        compute_metrics=compute_metrics,
        callbacks=[*(callbacks or []), *([TrimHeap()] if retain_heap else [])],
    )
    with retained_heap(retain_heap):  # large activations reuse the heap's pages each step (utils.heap)
        start = time.perf_counter()
        try:
            train_out = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
        finally:
            torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        seconds = time.perf_counter() - start
        eval_metrics = trainer.evaluate() if eval_dataset is not None else {}
    return trainer, train_out, seconds, eval_metrics
