"""`TrainingArguments` with the defaults both prompt tuning and fine-tuning share (transformers 5.x names).

Evaluate and save every epoch, keep the best model by a metric, length-grouped batches, no
reporting service, no dataloader worker processes (these machines have 2 cores).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from transformers import TrainingArguments

if TYPE_CHECKING:  # annotations only: importing Trainer is slow and the CLI does not need it
    from softprompt.core.task import Task

__all__ = [
    "PROMPT_WARMUP",
    "TrainingResult",
    "best_model_args",
    "default_training_args",
    "has_accelerator",
]

# Prompt tuning warms its learning rate up over the first 10 % of the steps: on the seed study of
# docs/reproducibility.md it raised the mean and narrowed the spread over seeds (0 means no warm-up).
PROMPT_WARMUP = 0.1


def default_training_args(
    output_dir: str | os.PathLike[str],
    *,
    learning_rate: float,
    num_train_epochs: float = 3,
    per_device_train_batch_size: int = 32,
    per_device_eval_batch_size: int | None = None,
    weight_decay: float = 0.0,
    seed: int = 42,
    metric_for_best_model: str = "accuracy",
    greater_is_better: bool = True,
    has_eval: bool = True,
    **overrides: Any,
) -> TrainingArguments:
    """Build ``TrainingArguments`` with the library's defaults; ``overrides`` win.

    Args:
        output_dir: Where checkpoints and the final artefact go.
        learning_rate: Peak learning rate (1e-2 for prompts, 2e-5 for fine-tuning).
        num_train_epochs: as in ``TrainingArguments``.
        per_device_train_batch_size: as in ``TrainingArguments``.
        weight_decay: as in ``TrainingArguments``.
        seed: as in ``TrainingArguments``.
        per_device_eval_batch_size: Defaults to twice the train batch size (no gradients to hold).
        metric_for_best_model: Key of ``compute_metrics`` used to keep the best checkpoint.
        greater_is_better: Whether a higher ``metric_for_best_model`` is better (``False`` for ``mse``).
        has_eval: Without an eval set there is no per-epoch evaluation or best-model selection.
        **overrides: Any other ``TrainingArguments`` field.

    Returns:
        The ``TrainingArguments``.

    Raises:
        ValueError: a non-positive learning rate, epoch count or batch size.

    Examples:
        >>> args = default_training_args("out", learning_rate=2e-5)
        >>> args.eval_strategy.value, args.train_sampling_strategy
        ('epoch', 'group_by_length')
    """
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    if not num_train_epochs > 0:
        raise ValueError(f"num_train_epochs must be > 0, got {num_train_epochs!r}")
    if not (isinstance(per_device_train_batch_size, int) and per_device_train_batch_size > 0):
        raise ValueError(f"batch size must be a positive int, got {per_device_train_batch_size!r}")
    strategy = "epoch" if has_eval else "no"
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        learning_rate=learning_rate,
        num_train_epochs=num_train_epochs,
        per_device_train_batch_size=per_device_train_batch_size,
        per_device_eval_batch_size=per_device_eval_batch_size or 2 * per_device_train_batch_size,
        weight_decay=weight_decay,
        seed=seed,
        eval_strategy=strategy,
        save_strategy="epoch",
        logging_strategy="steps",
        logging_steps=10,
        load_best_model_at_end=has_eval,
        metric_for_best_model=metric_for_best_model if has_eval else None,
        greater_is_better=greater_is_better,
        save_total_limit=2 if has_eval else 1,
        # batches of similar length: text lengths are long-tailed (10 to 3,000 tokens in a review corpus), so random batches
        # pad almost every batch to the maximum
        train_sampling_strategy="group_by_length",
        length_column_name="length",
        dataloader_num_workers=0,
        dataloader_pin_memory=has_accelerator(),
        # on a machine without a GPU, say so: accelerate then runs torchrun workers as multi-CPU
        # DDP (gloo) instead of independent copies, and Trainer allows bf16 autocast on the CPU
        use_cpu=not has_accelerator(),
        report_to="none",
        disable_tqdm=False,
    )
    kwargs.update(overrides)
    return TrainingArguments(**kwargs)


def has_accelerator() -> bool:
    """Whether torch has a GPU-like device to train on (CUDA, MPS, XPU...)."""
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6
    if accelerator is not None:
        return bool(accelerator.is_available())
    return torch.cuda.is_available() or torch.backends.mps.is_available()


@dataclass(kw_only=True)
class TrainingResult:
    """What a training run returns (:func:`softprompt.train_prompt`, :func:`softprompt.finetune.finetune`).

    Attributes:
        train_metrics: ``Trainer.train`` metrics (loss, runtime, samples/s; evaluations included).
        eval_metrics: Final evaluation of the kept artefact (``eval_accuracy``...), empty without eval data.
        log_history: ``Trainer`` log entries, per step and per epoch.
        best_checkpoint: Folder of the best checkpoint, if any.
        seconds: Wall time of ``Trainer.train``.

    Examples:
        >>> from transformers import AutoModelForSequenceClassification
        >>> from softprompt.finetune import finetune
        >>> fresh = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
        >>> result = finetune(fresh, tokenizer, train_ds, test_ds, output_dir="runs/ft", num_train_epochs=1)
        >>> "eval_accuracy" in result.eval_metrics, result.seconds > 0
        (True, True)
    """

    train_metrics: dict[str, float]
    eval_metrics: dict[str, float] = field(default_factory=dict)
    log_history: list[dict[str, Any]] = field(default_factory=list)
    best_checkpoint: str | None = None
    seconds: float = 0.0


def best_model_args(
    task: Task | None,
    metric: str | None,
    *,
    custom_metrics: bool = False,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``metric_for_best_model`` and ``greater_is_better`` for ``task`` (``metric`` overrides the task's).

    With ``custom_metrics`` (a caller's own ``compute_metrics``) any metric name is accepted; a
    ``greater_is_better`` in ``overrides`` is taken out of them and wins.

    Examples:
        >>> from softprompt.core.task import Task
        >>> best_model_args(Task("regression"), None)
        {'metric_for_best_model': 'pearson', 'greater_is_better': True}
    """
    from softprompt.core.task import Task

    task = task or Task()
    metric = metric or task.best_metric
    if not custom_metrics and metric not in (*task.metric_names, "loss"):
        raise ValueError(
            f"metric_for_best_model={metric!r} is not computed for a {task.type.value} task; choose one of "
            f"{list(task.metric_names)}"
        )
    greater = (overrides or {}).pop("greater_is_better", metric not in ("mse", "loss"))
    return {"metric_for_best_model": metric, "greater_is_better": greater}
