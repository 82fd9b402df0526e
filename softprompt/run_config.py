"""`RunConfig`: one end-to-end run's settings (data, recipe, prompt, seeds), checked on construction."""

from __future__ import annotations

import math
from dataclasses import dataclass

import transformers

from softprompt.atomic import check_dir_target
from softprompt.data import TaskData, load_data

__all__ = ["HEAD_INITS", "RunConfig"]

HEAD_INITS = ("model", "zeros")


@dataclass
class RunConfig:
    """One run's settings.

    Attributes:
        model: Hub id or local folder of the encoder.
        data: Hub dataset name (with ``data_config``), local folder or file (see :func:`softprompt.load_data`).
        text_column, text_pair_column, label_column: Columns of the data (a pair column makes a pair task).
        task: ``classification``, ``multi-label`` or ``regression``; ``None`` infers it from the labels.
        label_names: Class names in id order, for class ids without names.
        train_split, eval_split: Splits (``eval_split="auto"``: validation, else test).
        data_config: A Hub dataset's configuration (``glue`` + ``mrpc``).
        train_size, eval_size: Random subsets (``None`` = the whole split), picked with ``data_seed``.
        epochs, lr, batch_size: the recipe; ``batch_size`` is the effective batch.
        warmup: Linear warm-up: a fraction of the steps in ``[0, 1)`` or a number of steps; ``None``:
            the kind of run's default (:data:`PROMPT_WARMUP` for prompt tuning, none for fine-tuning).
        scheduler: ``TrainingArguments.lr_scheduler_type`` (``linear``, ``cosine``, ``constant``...).
        head_lr: Prompt tuning: the head's own learning rate (``None``: ``lr``).
        head_init: ``model`` keeps the head as ``from_pretrained`` made it; ``zeros`` sets the output
            layer of a head the checkpoint lacks to zero (a trained head is never touched).
        deterministic: ``TrainingArguments(full_determinism=True)``: deterministic kernels only
            (needed for repeatability on GPUs; on CPUs runs repeat without it).
        resume: Continue the run in ``output_dir`` from its newest complete checkpoint.
        overwrite: Start over in a used ``output_dir`` (its checkpoints and results are removed first).
            Without ``resume`` or ``overwrite`` a used ``output_dir`` is an error, never a mix of two runs.
        max_length: Longest input in tokens, virtual tokens included.
        num_virtual_tokens, init, init_text, deep: the prompt (prompt tuning only; ``init_text`` for
            ``init="text"``).
        bf16: Prompt tuning: frozen backbone held in bf16. Fine-tuning: bf16 autocast.
        output_dir: Where the artefact, checkpoints, ``results.json`` and ``curves.png`` go.
        seed: Seed of the initialisation (head and prompt), the training order and dropout; also of
            the subsets unless ``data_seed`` is set.
        data_seed: Seed of the subsets only, so runs with several seeds can share one subset.
        eval_batch_size: Texts per forward pass when scoring.
        reference, reference_label: A published figure of the task's main metric to draw on
            ``curves.png`` (an example's published figure); ``None`` draws none.
    """

    model: str
    data: str
    text_column: str = "text"
    text_pair_column: str | None = None
    label_column: str = "label"
    task: str | None = None
    label_names: list[str] | None = None
    train_split: str = "train"
    eval_split: str = "auto"
    data_config: str | None = None
    train_size: int | None = None
    eval_size: int | None = None
    epochs: float = 3
    warmup: float | None = None
    scheduler: str = "linear"
    head_lr: float | None = None
    head_init: str = "model"
    deterministic: bool = False
    resume: bool = False
    overwrite: bool = False
    max_length: int = 512
    num_virtual_tokens: int = 20
    init: str = "vocab"
    init_text: str | None = None
    lr: float = 1e-2
    batch_size: int = 8
    bf16: bool = False
    output_dir: str = "runs/prompt_tune"
    seed: int = 42
    data_seed: int | None = None
    eval_batch_size: int = 64
    deep: bool = False
    reference: float | None = None
    reference_label: str = "reference"

    def __post_init__(self) -> None:
        for name in ("model", "data"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(
                    f"RunConfig.{name} must be a string (a Hub id or a path), got {type(value).__name__}"
                )
            if not value:
                raise ValueError(f"RunConfig.{name} is empty; name a Hub id or a local path")
        for name in ("train_size", "eval_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive int or None, got {value!r}")
        for name in ("batch_size", "eval_batch_size", "max_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("epochs", "lr", "head_lr"):
            value = getattr(self, name)
            if value is None and name == "head_lr":
                continue
            if not isinstance(value, (int, float)) or not math.isfinite(value) or not value > 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if self.warmup is not None and (
            not isinstance(self.warmup, (int, float))
            or not (0 <= self.warmup < math.inf)
            or (self.warmup >= 1 and self.warmup != int(self.warmup))
        ):
            raise ValueError(
                f"warmup must be a fraction of the steps in [0, 1) or a whole number of steps, got {self.warmup!r}"
            )
        schedulers = [s.value for s in transformers.SchedulerType]
        if self.scheduler not in schedulers:
            raise ValueError(f"scheduler must be one of {schedulers}, got {self.scheduler!r}")
        if self.init == "text" and not (isinstance(self.init_text, str) and self.init_text.strip()):
            raise ValueError("init='text' needs init_text (--init-text 'classify the sentiment')")
        check_dir_target(self.output_dir, "output_dir")
        if self.resume and self.overwrite:
            raise ValueError("resume and overwrite exclude each other: continue the run, or start it over")
        if self.head_init not in HEAD_INITS:
            raise ValueError(f"head_init must be one of {list(HEAD_INITS)}, got {self.head_init!r}")

    def load_data(self, *, with_train: bool = True) -> TaskData:
        """The run's data, as :func:`softprompt.load_data` checks it (``with_train=False``: eval split only)."""
        return load_data(
            self.data, text_column=self.text_column, text_pair_column=self.text_pair_column,
            label_column=self.label_column, task=self.task, label_names=self.label_names,
            train_split=self.train_split if with_train else None, eval_split=self.eval_split,
            train_size=self.train_size if with_train else None, eval_size=self.eval_size,
            seed=self.seed if self.data_seed is None else self.data_seed,
            config_name=self.data_config,
        )  # fmt: skip
