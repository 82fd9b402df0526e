"""Where models are fine-tuned: :func:`finetune`, a standard recipe on ``transformers.Trainer``.

Every weight is trained (AdamW, lr 2e-5, batch 32, 3 epochs, weight decay 0.01), evaluated and
saved every epoch; the best epoch by the task's metric is kept and saved as a ``save_pretrained`` folder.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import torch
import transformers
from transformers import Trainer, TrainingArguments
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES,
    MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
    MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES,
)

from softprompt.core.constants import TRAINING_ARGS_FILE
from softprompt.core.protocols import is_prompted
from softprompt.finetune.saving import save_finetuned
from softprompt.models import backbone
from softprompt.training.arguments import TrainingResult
from softprompt.training.assembly import check_datasets, train_with_trainer
from softprompt.training.sampling import SeededSamplingMixin
from softprompt.utils.heap import retained_heap_for_training

__all__ = ["TRAINING_ARGS_FILE", "FinetuneResult", "finetune"]

logger = logging.getLogger(__name__)


# Class names AutoModelForSequenceClassification, ...ForTokenClassification and ...ForQuestionAnswering map
# to: what load_finetuned can rebuild.
_CLS_NAMES = frozenset(
    name
    for mapping in (
        MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
        MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES,
        MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES,
    )
    for names in mapping.values()
    for name in ((names,) if isinstance(names, str) else names)
)


@dataclass(kw_only=True)
class FinetuneResult(TrainingResult):
    """What :func:`finetune` returns: :class:`~softprompt.TrainingResult` and the saved model folder.

    Attributes:
        model_dir: The saved (best, if evaluated) model and tokenizer; load it with
            :func:`softprompt.finetune.load_finetuned`.

    Examples:
        >>> from transformers import AutoModelForSequenceClassification
        >>> from softprompt.finetune import finetune, load_finetuned
        >>> fresh = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
        >>> result = finetune(fresh, tokenizer, train_ds, test_ds, output_dir="runs/ft", num_train_epochs=1)
        >>> reloaded, reloaded_tokenizer = load_finetuned(result.model_dir)
        >>> type(reloaded).__name__
        'BertForSequenceClassification'
    """

    model_dir: Path


class FinetuneTrainer(SeededSamplingMixin, Trainer):
    """``Trainer`` with the seeded length-grouped sampler (resuming from any step replays the same batches)."""


def finetune(
    model: transformers.PreTrainedModel,
    tokenizer: transformers.PreTrainedTokenizerBase,
    train_dataset: datasets.Dataset,
    eval_dataset: datasets.Dataset | None = None,
    *,
    output_dir: str | os.PathLike[str],
    num_train_epochs: float = 3,
    learning_rate: float = 2e-5,
    per_device_train_batch_size: int = 32,
    gradient_accumulation_steps: int = 1,
    weight_decay: float = 0.01,
    bf16: bool = False,
    seed: int = 42,
    metric_for_best_model: str | None = None,
    resume_from_checkpoint: str | bool | None = None,
    callbacks: list[transformers.TrainerCallback] | None = None,
    compute_metrics: Any | None = None,
    data_collator: Any | None = None,
    training_args: TrainingArguments | None = None,
    **overrides: Any,
) -> FinetuneResult:
    """Fine-tune every weight of a sequence- or token-classification model with ``transformers.Trainer``.

    The model is trained in place (and left in eval mode, holding the kept weights). Checkpoints
    (``checkpoint-*``, full weights plus optimizer state) go to ``output_dir``; at the end the
    kept model, its tokenizer and ``training_args.json`` are saved there with
    :func:`save_finetuned`, so ``load_finetuned(output_dir)`` works in a new process.

    Args:
        model: An ``AutoModelForSequenceClassification`` (or ``AutoModelForTokenClassification``)
            model in float32; its config's ``id2label`` names the classes (tags) and is saved with it.
        tokenizer: Its tokenizer (pads batches, saved with the model).
        train_dataset: Tokenized training data (``input_ids``, ``attention_mask``, ``labels``,
            ``length``), as :func:`softprompt.tokenize_dataset` makes it.
        eval_dataset: Tokenized evaluation data; evaluated every epoch, best epoch kept.
        output_dir: Checkpoints and the final model folder.
        num_train_epochs: Epochs (default 3).
        learning_rate: AdamW's learning rate (default 2e-5).
        per_device_train_batch_size: Training batch size (default 32).
        gradient_accumulation_steps: Batches per optimizer step (default 1).
        weight_decay: AdamW's weight decay (default 0.01).
        seed: The run's seed (initialisation, data order, dropout).
        bf16: bf16 autocast over fp32 master weights (``TrainingArguments(bf16=True)``); on a
            machine without a bf16 GPU this trains on the CPU (``use_cpu=True``).
        metric_for_best_model: Metric that picks the kept epoch; default: the task's (from
            ``config.problem_type``: ``accuracy``, ``f1_micro`` or ``pearson``).
        resume_from_checkpoint: A checkpoint folder, or ``True`` for the latest in ``output_dir``.
        callbacks: Extra ``TrainerCallback`` objects.
        compute_metrics: Replaces the task's metrics: a ``Trainer`` ``compute_metrics``, or ``evaluate``
            metric names/modules (``"accuracy"``, ``["f1", "matthews_correlation"]``, a local script path);
            see :mod:`softprompt.tasks.scoring`. With names, the first keeps the best checkpoint.
        data_collator: Replaces the padding collator.
        training_args: Full ``TrainingArguments`` to use instead of the recipe; the recipe
            arguments above are then ignored, and ``output_dir`` still receives the final model.
        **overrides: ``TrainingArguments`` fields to change in the recipe.

    Returns:
        :class:`FinetuneResult`.

    Raises:
        TypeError: ``model`` is not a sequence- or token-classification ``PreTrainedModel``, the tokenizer or
            a dataset has the wrong type, or both ``training_args`` and ``overrides`` are given.
        ValueError: no tokenizer, weights not in float32, an empty dataset, missing columns,
            labels outside ``[0, num_labels)``, an unknown ``metric_for_best_model`` or a bad
            recipe value. All are raised before anything is written to ``output_dir``.

    Examples:
        >>> from transformers import AutoModelForSequenceClassification
        >>> model = AutoModelForSequenceClassification.from_pretrained(
        ...     "bert-base-uncased", num_labels=2, id2label=data.id2label, label2id=data.label2id)
        >>> result = finetune(model, tokenizer, train_ds, test_ds, output_dir="runs/sentiment-bert", num_train_epochs=1)
        >>> 0 <= result.eval_metrics["eval_accuracy"] <= 1
        True
    """
    _check_model(model)
    if tokenizer is None:
        raise ValueError("finetune needs the model's tokenizer (to pad batches and to save with the model)")
    if not isinstance(tokenizer, transformers.PreTrainedTokenizerBase):
        raise TypeError(f"tokenizer must be a transformers tokenizer, got {type(tokenizer).__name__}")
    task = backbone.sequence_task(model)
    check_datasets(task, model.config.num_labels, train_dataset, eval_dataset)
    recipe = {
        "learning_rate": learning_rate,
        "num_train_epochs": num_train_epochs,
        "per_device_train_batch_size": per_device_train_batch_size,
        "gradient_accumulation_steps": gradient_accumulation_steps,
        "weight_decay": weight_decay,
        "seed": seed,
        "bf16": bf16,
    }
    run = train_with_trainer(
        FinetuneTrainer, model, tokenizer, train_dataset, eval_dataset, task=task, id2label=model.config.id2label,
        output_dir=output_dir, recipe=recipe, training_args=training_args, overrides=overrides,
        metric_for_best_model=metric_for_best_model, compute_metrics=compute_metrics, data_collator=data_collator,
        callbacks=callbacks, resume_from_checkpoint=resume_from_checkpoint,
        retain_heap=retained_heap_for_training(),  # SOFTPROMPT_RETAIN_HEAP=1: faster, more memory (utils.heap)
    )  # fmt: skip
    trainer, args = run.trainer, run.args
    kept = trainer.accelerator.unwrap_model(trainer.model, keep_torch_compile=False)
    if args.should_save:  # the main process only, under torchrun
        save_finetuned(kept, tokenizer, output_dir, extra_files={TRAINING_ARGS_FILE: args.to_json_string()})
    model.eval()
    return FinetuneResult(
        model_dir=Path(output_dir),
        train_metrics=dict(run.train_output.metrics),
        eval_metrics=dict(run.eval_metrics),
        log_history=list(trainer.state.log_history),
        best_checkpoint=trainer.state.best_model_checkpoint,
        seconds=run.seconds,
    )


def _check_model(model: Any) -> None:
    if not isinstance(model, transformers.PreTrainedModel):
        hint = " (for prompt tuning use train_prompt)" if is_prompted(model) else ""
        raise TypeError(f"finetune needs a transformers PreTrainedModel, got {type(model).__name__}{hint}")
    if type(model).__name__ not in _CLS_NAMES:
        raise TypeError(
            f"finetune needs a model with a sequence- or token-classification or question-answering head, got "
            f"{type(model).__name__}; load it with AutoModelForSequenceClassification (or ...ForTokenClassification, "
            "...ForQuestionAnswering).from_pretrained(name, num_labels=..., id2label=...)"
        )
    low = sorted(
        {str(p.dtype) for p in model.parameters() if p.is_floating_point() and p.dtype != torch.float32}
    )
    if low:
        raise ValueError(
            f"the model has {', '.join(low)} weights; fine-tuning needs float32 master weights (AdamW's 2e-5 "
            "steps vanish in bf16). Load it in float32 (the default) and pass bf16=True for mixed precision"
        )
    names = list(model.config.id2label.values())
    if names == [f"LABEL_{i}" for i in range(len(names))]:
        logger.warning(
            "the model's config has no class names (id2label %s); pass id2label= when loading it so "
            "predictions are named",
            model.config.id2label,
        )
