"""Where prompts are trained: `PromptTrainer` (a `transformers.Trainer`) and `train_prompt`.

Checkpoints hold only what is trained (``prompt.safetensors``, a few KB) plus optimizer, scheduler
and RNG state; never a copy of the frozen backbone.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import torch
from transformers import Trainer, TrainingArguments

from softprompt.core.constants import PROMPT_NAME, TRAINING_ARGS_FILE
from softprompt.models import backbone
from softprompt.models.heads import is_head_parameter
from softprompt.tasks import family_for
from softprompt.tasks.base import EvalPredictor
from softprompt.training.arguments import PROMPT_WARMUP, TrainingResult
from softprompt.training.assembly import check_datasets, train_with_trainer
from softprompt.training.sampling import SeededSamplingMixin
from softprompt.utils.atomic import atomic_write_text
from softprompt.utils.heap import retained_heap_for_training
from softprompt.wrapper.model import SoftPromptWrapper

__all__ = ["PROMPT_FILE_NAME", "PromptTrainer", "PromptTrainingResult", "train_prompt"]

logger = logging.getLogger(__name__)

PROMPT_FILE_NAME = PROMPT_NAME  # the 0.x name


class PromptTrainer(SeededSamplingMixin, Trainer):
    """``Trainer`` for a :class:`~softprompt.SoftPromptWrapper`: small checkpoints, in-place best/resume restores.

    The optimizer sees only trainable parameters (prompt and head); ``head_learning_rate`` gives
    the head its own learning rate (the prompt keeps ``args.learning_rate``; both follow the same
    schedule). ``eval_predictor`` replaces evaluation's logits and labels with a task family's own
    (:meth:`softprompt.tasks.base.TaskFamily.eval_predictor`: text-to-label prompts generate their class
    words). Everything else (mixed precision, ``torchrun``/``accelerate``, logging) is ``Trainer``'s own.
    :func:`~softprompt.train_prompt` builds one with the task's collator, metrics and callbacks.

    Args:
        model: The wrapper to train.
        *args: ``Trainer``'s positional arguments (``args``, ``data_collator``...).
        head_learning_rate: The head's own peak learning rate; ``None``: ``args.learning_rate``.
        eval_predictor: Evaluation's ``(logits, labels)`` from a task family, instead of the forward's.
        **kwargs: ``Trainer``'s keyword arguments (``train_dataset``, ``compute_metrics``, ``callbacks``...).

    Raises:
        TypeError: ``model`` is not a :class:`~softprompt.SoftPromptWrapper`.
        ValueError: ``head_learning_rate`` is not a finite number above 0.

    Examples:
        >>> from transformers import DataCollatorWithPadding
        >>> from softprompt import PromptTrainer, default_training_args
        >>> args = default_training_args("runs/pt", learning_rate=1e-2, num_train_epochs=1,
        ...                              per_device_train_batch_size=4, has_eval=False, disable_tqdm=True)
        >>> trainer = PromptTrainer(wrapper, args=args, train_dataset=train_ds,
        ...                         data_collator=DataCollatorWithPadding(tokenizer), head_learning_rate=1e-3)
        >>> trainer.train().global_step  # 12 texts, 4 per step
        3
    """

    def __init__(
        self,
        model: SoftPromptWrapper,
        *args: Any,
        head_learning_rate: float | None = None,
        eval_predictor: EvalPredictor | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(model, SoftPromptWrapper):
            raise TypeError(f"PromptTrainer trains a SoftPromptWrapper, got {type(model).__name__}")
        if head_learning_rate is not None and not (
            isinstance(head_learning_rate, (int, float))
            and math.isfinite(head_learning_rate)
            and head_learning_rate > 0
        ):
            raise ValueError(f"head_learning_rate must be a finite number > 0, got {head_learning_rate!r}")
        self.head_learning_rate = head_learning_rate
        self.eval_predictor = eval_predictor
        super().__init__(model, *args, **kwargs)

    def prediction_step(
        self,
        model: Any,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[torch.Tensor | None, Any, Any]:
        """``Trainer``'s step; with an ``eval_predictor`` (text-to-label generates), its outputs and labels.

        Args:
            model: The model being evaluated.
            inputs: One padded batch.
            prediction_loss_only: Return the loss alone.
            ignore_keys: Output keys to leave out of the logits.

        Returns:
            ``(loss, logits, labels)``, as ``Trainer.prediction_step``.

        Examples:
            >>> from softprompt import PromptTrainer, default_training_args
            >>> args = default_training_args("runs/pt", learning_rate=1e-2, has_eval=False)
            >>> trainer = PromptTrainer(wrapper, args=args)
            >>> batch = {**tokenizer(["a great product"], return_tensors="pt"), "labels": torch.tensor([1])}
            >>> loss, logits, labels = trainer.prediction_step(wrapper, batch, prediction_loss_only=False)
            >>> logits.shape, labels.tolist()
            (torch.Size([1, 2]), [1])
        """
        if self.eval_predictor is None:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)
        loss = super().prediction_step(model, inputs, True, ignore_keys=ignore_keys)[0]
        if prediction_loss_only:
            return loss, None, None
        predicted, gold = self.eval_predictor(self._wrapper(), self._prepare_inputs(inputs))
        return loss, predicted, gold

    def create_optimizer(self, model: Any = None) -> torch.optim.Optimizer:
        """``Trainer``'s optimizer; with ``head_learning_rate``, one parameter group per (rate, decay).

        Args:
            model: The model to optimise (default: the trainer's).

        Returns:
            The optimizer, also kept as ``self.optimizer``.

        Examples:
            >>> from softprompt import PromptTrainer, default_training_args
            >>> args = default_training_args("runs/pt", learning_rate=1e-2, has_eval=False)
            >>> trainer = PromptTrainer(wrapper, args=args, head_learning_rate=1e-3)
            >>> sorted(group["lr"] for group in trainer.create_optimizer().param_groups)
            [0.001, 0.01]
        """
        if self.optimizer is None and self.head_learning_rate is not None:
            opt_model = self.model if model is None else model
            decay = set(self.get_decay_parameter_names(opt_model))
            groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
            for name, param in opt_model.named_parameters():
                if not param.requires_grad:
                    continue
                lr = self.head_learning_rate if is_head_parameter(name) else self.args.learning_rate
                wd = self.args.weight_decay if name in decay else 0.0
                groups.setdefault((lr, wd), []).append(param)
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            optimizer_kwargs.pop("lr", None)  # each group carries its own
            self.optimizer = optimizer_cls(
                [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()],
                lr=self.args.learning_rate,
                **optimizer_kwargs,
            )
        return super().create_optimizer(model)

    def _wrapper(self) -> SoftPromptWrapper:
        return self.accelerator.unwrap_model(self.model, keep_torch_compile=False)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """Write only the prompt file (and the arguments as JSON: no pickled ``training_args.bin``)."""
        if not self.args.should_save:
            return
        out = Path(output_dir or self.args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        self._wrapper().save_prompt(out / PROMPT_FILE_NAME)
        atomic_write_text(out / TRAINING_ARGS_FILE, self.args.to_json_string())

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        path = Path(resume_from_checkpoint) / PROMPT_FILE_NAME
        if not path.is_file():
            raise FileNotFoundError(
                f"{resume_from_checkpoint!r} is not a softprompt checkpoint: no {PROMPT_FILE_NAME}"
            )
        self._wrapper().reload_prompt(path)

    def _load_best_model(self) -> None:
        best = Path(self.state.best_model_checkpoint) / PROMPT_FILE_NAME
        logger.info("restoring the best prompt from %s (%s)", best, self.state.best_metric)
        self._wrapper().reload_prompt(best)


@dataclass(kw_only=True)
class PromptTrainingResult(TrainingResult):
    """What :func:`~softprompt.train_prompt` returns: :class:`~softprompt.TrainingResult` and the prompt file.

    Attributes:
        prompt_path: The final (best, if evaluated) prompt file, ``output_dir/prompt.safetensors``.

    Examples:
        >>> from softprompt import train_prompt
        >>> result = train_prompt(wrapper, train_ds, test_ds, output_dir="runs/pt", num_train_epochs=1)
        >>> result.prompt_path.name, "eval_accuracy" in result.eval_metrics
        ('prompt.safetensors', True)
    """

    prompt_path: Path


def train_prompt(
    wrapper: SoftPromptWrapper,
    train_dataset: datasets.Dataset,
    eval_dataset: datasets.Dataset | None = None,
    *,
    output_dir: str | os.PathLike[str],
    num_train_epochs: float = 3,
    learning_rate: float = 1e-2,
    head_learning_rate: float | None = None,
    warmup_steps: float = PROMPT_WARMUP,
    per_device_train_batch_size: int = 8,
    bf16: bool = False,
    seed: int = 42,
    metric_for_best_model: str | None = None,
    resume_from_checkpoint: str | bool | None = None,
    callbacks: list[Any] | None = None,
    compute_metrics: Any | None = None,
    data_collator: Any | None = None,
    training_args: TrainingArguments | None = None,
    **overrides: Any,
) -> PromptTrainingResult:
    """Train the wrapper's active prompt (and head) with ``transformers.Trainer``.

    ``seed`` fixes the batch order and dropout; the prompt's start is ``SoftPromptConfig.seed``'s. A head
    that ``from_pretrained`` created new came from the caller's random state: call
    ``transformers.set_seed(seed)`` before loading the model for a repeatable run (the run functions do).

    Args:
        wrapper: The :class:`SoftPromptWrapper`; needs a tokenizer (for padding).
        train_dataset: Tokenized training data (``input_ids``, ``attention_mask``, ``labels``,
            ``length``), as :func:`softprompt.tokenize_dataset` makes it; question-answering windows
            carry ``start_positions``/``end_positions`` instead of ``labels``.
        eval_dataset: Tokenized evaluation data; evaluated every epoch, best prompt kept.
        output_dir: Checkpoints and the final ``prompt.safetensors``.
        num_train_epochs: Epochs (default 3).
        learning_rate: AdamW's peak learning rate (default 1e-2).
        per_device_train_batch_size: Training batch size (default 8).
        seed: Seed of the batch order and dropout.
        head_learning_rate: The head's own peak learning rate; ``None``: ``learning_rate``.
        warmup_steps: Linear warm-up, a fraction of the steps in ``[0, 1)`` or a step count
            (default: the first 10 %; ``0``: no warm-up).
        bf16: Hold the frozen backbone in bf16 (prompt and head stay fp32 master weights); unlike
            per-step autocast this casts once. Only where bf16 is native: on CPUs with AVX-512 BF16 or
            AMX a bf16 GEMM measured ~2x (AMD) to ~8x (Intel AMX) fp32's, on AVX2-only CPUs ~100x slower
            (docs/benchmarks.md). Rounds the backbone's arithmetic to bf16: results differ from fp32's.
        metric_for_best_model: Metric that picks the kept prompt; default: the task's
            (``accuracy``, ``f1_micro`` for multi-label, ``pearson`` for regression, entity-level
            ``f1`` for token classification, SQuAD answer ``f1`` for question answering).
        resume_from_checkpoint: A checkpoint folder, or ``True`` for the newest *complete* one in
            ``output_dir`` (a folder a killed run left half-written is skipped, with a warning).
        callbacks: Extra ``TrainerCallback`` objects.
        compute_metrics: Replaces the task's metrics: a ``Trainer`` ``compute_metrics``, or ``evaluate``
            metric names/modules (``"accuracy"``, ``["f1", "matthews_correlation"]``, a local script path);
            see :mod:`softprompt.tasks.scoring`. With names, the first keeps the best checkpoint.
        data_collator: Replaces the task's padding collator (``DataCollatorWithPadding``, or
            ``DataCollatorForTokenClassification`` for token classification, ``DataCollatorForSeq2Seq``
            for text-to-label).
        training_args: Full ``TrainingArguments`` to use instead of the defaults (for question
            answering with ``label_names=["start_positions", "end_positions"]`` and
            ``include_for_metrics=["inputs"]``, which the defaults set).
        **overrides: ``TrainingArguments`` fields to change in the defaults.

    Returns:
        :class:`PromptTrainingResult`.

    Raises:
        TypeError, ValueError: bad wrapper or datasets, before any training starts.

    Examples:
        >>> import pandas as pd
        >>> from softprompt import load_data, tokenize_dataset, train_prompt
        >>> frame = pd.DataFrame({"text": ["a great product", "a dull product"] * 8, "label": [1, 0] * 8})
        >>> data = load_data(frame, holdout=0.25, label_names=["neg", "pos"])
        >>> train_ds = tokenize_dataset(data.train, tokenizer, max_length=32, num_virtual_tokens=4)
        >>> test_ds = tokenize_dataset(data.eval, tokenizer, max_length=32, num_virtual_tokens=4)
        >>> result = train_prompt(wrapper, train_ds, test_ds, output_dir="runs/sentiment", num_train_epochs=1)
        >>> 0 <= result.eval_metrics["eval_accuracy"] <= 1, result.prompt_path.name
        (True, 'prompt.safetensors')
    """
    if not isinstance(wrapper, SoftPromptWrapper):
        raise TypeError(f"train_prompt needs a SoftPromptWrapper, got {type(wrapper).__name__}")
    if wrapper.tokenizer is None:
        raise ValueError(
            "train_prompt needs the wrapper's tokenizer for padding: SoftPromptWrapper(model, tokenizer=...)"
        )
    if wrapper.backbone_quantized:
        raise ValueError(
            "this wrapper's backbone was quantized to int8 (inference only); train on a fresh fp32 model"
        )
    task = wrapper.task
    check_datasets(task, backbone.num_labels(wrapper.model), train_dataset, eval_dataset)
    if bf16 and wrapper.backbone_dtype != torch.bfloat16:
        wrapper.cast_backbone(torch.bfloat16)
    trainer_class = functools.partial(
        PromptTrainer,
        head_learning_rate=head_learning_rate,
        # text-to-label: each evaluation generates the class words (None for every other family)
        eval_predictor=family_for(task).eval_predictor(wrapper),
    )
    recipe = {
        "learning_rate": learning_rate,
        "num_train_epochs": num_train_epochs,
        "per_device_train_batch_size": per_device_train_batch_size,
        "warmup_steps": warmup_steps,
        "seed": seed,
    }
    run = train_with_trainer(
        trainer_class, wrapper, wrapper.tokenizer, train_dataset, eval_dataset, task=task,
        id2label=wrapper.id2label, output_dir=output_dir, recipe=recipe, training_args=training_args,
        overrides=overrides, metric_for_best_model=metric_for_best_model, compute_metrics=compute_metrics,
        data_collator=data_collator, callbacks=callbacks, resume_from_checkpoint=resume_from_checkpoint,
        retain_heap=retained_heap_for_training(),  # SOFTPROMPT_RETAIN_HEAP=1 (utils.heap)
    )  # fmt: skip
    trainer, args = run.trainer, run.args
    prompt_path = Path(args.output_dir) / PROMPT_FILE_NAME
    slot = wrapper.prompts[wrapper.active_prompt]
    if slot.reparameterized:
        wrapper.fold_reparam()  # the final file keeps plain vectors, not the MLPs they trained through
    trainer.save_model(str(args.output_dir))  # the kept (best) prompt
    return PromptTrainingResult(
        prompt_path=prompt_path,
        train_metrics=dict(run.train_output.metrics),
        eval_metrics=dict(run.eval_metrics),
        log_history=list(trainer.state.log_history),
        best_checkpoint=trainer.state.best_model_checkpoint,
        seconds=run.seconds,
    )
