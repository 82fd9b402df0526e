"""`RunConfig`: one end-to-end run's settings (data, recipe, prompt, seeds), checked on construction.

Each field documents itself in ``metadata["help"]``; ``softprompt train --help`` is generated from it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from softprompt.core.config import MAX_VIRTUAL_TOKENS, check_deep_reparam
from softprompt.runs.overrides import check_training_overrides
from softprompt.utils.atomic import atomic_write_json, check_dir_target

if TYPE_CHECKING:  # annotations only: the data side imports datasets and torch
    from softprompt.data import TaskData

__all__ = ["FINETUNE_DEFAULTS", "HEAD_INITS", "RUN_CONFIG_FILE", "RunConfig"]

HEAD_INITS = ("auto", "model", "zeros", "fit")
# what a run folder records its resolved settings in (RunConfig.save)
RUN_CONFIG_FILE = "run_config.json"


def _help(text: str, **more: Any) -> Any:
    """A field's documentation (and argparse's ``choices``/``metavar``, which ``HfArgumentParser`` passes on)."""
    return {"help": text, **more}


@dataclass
class RunConfig:
    """One run's settings: what :func:`softprompt.run_prompt_tuning`, :func:`softprompt.run_finetune`,
    ``softprompt train|finetune`` and the examples run.

    The defaults are prompt tuning's; fine-tuning changes those in :data:`FINETUNE_DEFAULTS` (a lower
    learning rate, a larger batch, another folder). ``training_args`` changes any other
    ``TrainingArguments`` field on top of the library's defaults; the fields a ``RunConfig`` owns
    (``learning_rate`` is ``lr``, see :data:`softprompt.runs.overrides.OWNED_TRAINING_ARGS`) are
    set here only. Every field's ``metadata["help"]`` says what it does (``softprompt train --help``).
    :meth:`save` writes the resolved settings to ``run_config.json``, which ``RunConfig(**json)`` and
    ``softprompt train --config`` read back.

    Raises:
        TypeError: ``model`` or ``data`` is not a string.
        ValueError: a setting out of its range (the message names it and what is allowed).

    Examples:
        >>> cfg = RunConfig(model="bert-base-uncased", data="glue", data_config="sst2", epochs=2,
        ...                 training_args={"gradient_accumulation_steps": 2})
        >>> cfg.lr, cfg.batch_size, cfg.training_args
        (0.01, 8, {'gradient_accumulation_steps': 2})
        >>> RunConfig(**cfg.to_dict()) == cfg
        True
    """

    # fmt: off
    model: str = field(metadata=_help("Hub id or local folder of the encoder"))
    data: str = field(metadata=_help(
        "a folder of split files (train.parquet, validation.csv, test.jsonl...), one such file, a folder of "
        "<split>/<class>/*.txt files, or a Hub dataset name (with --data-config)"))
    _: KW_ONLY  # every other setting by name: a new field never shifts a caller's positional values
    text_column: str = field(default="text", metadata=_help("column of the (first) texts"))
    text_pair_column: str | None = field(
        default=None, metadata=_help("column of the second texts: makes it a sentence-pair task"))
    label_column: str = field(default="label", metadata=_help("column of the labels"))
    tokens_column: str | None = field(default=None, metadata=_help(
        "token classification: column of each row's words (a list); with --tags-column"))
    tags_column: str | None = field(default=None, metadata=_help(
        "token classification: column of each row's tags, one per word (IOB: O, B-PER, I-PER...)"))
    question_column: str | None = field(default=None, metadata=_help(
        "question answering: column of the questions (with --context-column and --answers-column)"))
    context_column: str | None = field(default=None, metadata=_help(
        "question answering: column of the passages the answers are cut from"))
    answers_column: str | None = field(default=None, metadata=_help(
        "question answering: column of SQuAD-style answers, {'text': [...], 'answer_start': [...]}"))
    doc_stride: int | None = field(default=None, metadata=_help(
        "question answering: tokens that consecutive windows of a long context share; None: min(128, room / 4)"))
    max_answer_length: int = field(default=30, metadata=_help(
        "question answering: the longest answer predicted, in tokens"))
    task: str | None = field(default=None, metadata=_help(
        "the task; None: inferred from the columns and the labels (and printed)",
        choices=["classification", "multi-label", "regression", "token-classification", "question-answering",
                 "text-to-label"]))
    label_names: list[str] | None = field(
        default=None, metadata=_help("class names in id order, for integer labels without names"))
    train_split: str = field(default="train", metadata=_help("training split"))
    eval_split: str = field(
        default="auto", metadata=_help("evaluation split; 'auto': validation if there is one, else test"))
    holdout: float | None = field(default=None, metadata=_help(
        "evaluate on this share of the training split's rows, e.g. 0.2 (picked with the data seed, never "
        "trained on), for data that comes as one file; instead of --eval-split"))
    data_config: str | None = field(
        default=None, metadata=_help("the Hub dataset's configuration, e.g. --data glue --data-config mrpc"))
    train_size: int | None = field(default=None, metadata=_help(
        "random training rows to use (picked with the data seed); None or 'all': the whole split"))
    eval_size: int | None = field(
        default=None, metadata=_help("random evaluation rows to score; None or 'all': the whole split"))
    epochs: float = field(default=3, metadata=_help("training epochs"))
    warmup: float | None = field(default=None, metadata=_help(
        "linear warm-up: a fraction of the steps in [0, 1) or a number of steps; None: the kind of run's "
        "default (the first tenth of the steps for prompt tuning, none for fine-tuning)"))
    scheduler: str = field(default="linear", metadata=_help(
        "learning-rate schedule, a TrainingArguments lr_scheduler_type: linear, cosine, constant..."))
    head_lr: float | None = field(
        default=None, metadata=_help("prompt tuning: the head's own peak learning rate; None: lr"))
    train_head: bool = field(default=True, metadata=_help(
        "prompt tuning: train the head with the prompt; false: the head stays as loaded (or fitted) while the "
        "prompt trains, and is still saved in the prompt file, so a reloaded prompt predicts as trained"))
    head_init: str = field(default="auto", metadata=_help(
        "'auto': 'fit' for a deep prompt's regression head the checkpoint lacks, 'model' otherwise; 'fit' "
        "(prompt tuning, regression): a new head starts at the ridge fit of the labels to the starting "
        "prompt's features (linear probing first; keeps deep prompts from collapsing); 'zeros': a head the "
        "checkpoint lacks starts with a zero output layer (a trained head is kept); 'model': as "
        "from_pretrained made it", choices=list(HEAD_INITS)))
    deterministic: bool = field(default=False, metadata=_help(
        "deterministic kernels only (TrainingArguments full_determinism): needed for repeatable runs on "
        "GPUs; on CPUs runs repeat without it"))
    resume: bool = field(
        default=False, metadata=_help("continue the run in output_dir from its newest complete checkpoint"))
    overwrite: bool = field(default=False, metadata=_help(
        "start over in a used output_dir (its checkpoints and results are removed first); without resume "
        "or overwrite a used output_dir is an error, never a mix of two runs"))
    max_length: int = field(default=512, metadata=_help("longest input in tokens, virtual tokens included"))
    num_virtual_tokens: int = field(default=20, metadata=_help("soft prompt length; prompt tuning only"))
    init: str = field(default="vocab", metadata=_help(
        "prompt initialisation; prompt tuning only ('prompt': from --init-from's files)",
        choices=["random", "vocab", "text", "labels", "prompt"]))
    init_from: list[str] | None = field(default=None, metadata=_help(
        "prompt transfer: start from these trained prompt files or run folders of the same base model, "
        "averaged (sets --init prompt); their head too where task and classes match"))
    residual_hidden: int | None = field(default=None, metadata=_help(
        "train the prompt through a residual MLP of this bottleneck width (Razdaibiedina et al. 2023), folded "
        "into plain vectors in the saved file; None: train the vectors directly"))
    placement: str = field(default="after_cls", metadata=_help(
        "where the prompt goes: after [CLS]/<s>/BOS (the pooler still reads [CLS]), or 'prepend': first, as "
        "PEFT does (needed for PEFT-loadable folders, and for T5, whose inputs open with no such token)",
        choices=["after_cls", "prepend"]))
    label_words: list[str] | None = field(default=None, metadata=_help(
        "words naming the classes in id order: what --task text-to-label generates, and --init labels starts "
        "from (default: the label names)"))
    init_text: str | None = field(default=None, metadata=_help(
        "the words init 'text' starts the prompt from, e.g. 'classify the topic'"))
    lr: float = field(default=1e-2, metadata=_help("peak learning rate (AdamW unless --optim says otherwise)"))
    batch_size: int = field(default=8, metadata=_help(
        "training examples per forward pass on each device (TrainingArguments per_device_train_batch_size); "
        "an optimizer step sees batch_size x gradient_accumulation_steps x processes"))
    bf16: bool = field(default=False, metadata=_help(
        "bf16: the frozen backbone held in bf16 (prompt tuning) or bf16 autocast (fine-tuning); only where "
        "bf16 is native (GPUs, AVX-512 BF16/AMX CPUs): on AVX2-only CPUs it is far slower than fp32"))
    output_dir: str = field(default="runs/prompt_tune", metadata=_help(
        "where the artefact, checkpoints, run_config.json, results.json and curves.png go"))
    seed: int = field(default=42, metadata=_help(
        "seed of the initialisation (head and prompt), the batch order and dropout; also of the subsets "
        "unless data_seed is set"))
    data_seed: int | None = field(default=None, metadata=_help(
        "seed of the train_size/eval_size subsets alone, so runs with several seeds share one subset"))
    eval_batch_size: int = field(default=64, metadata=_help("texts per forward pass when scoring"))
    deep: bool = field(
        default=False, metadata=_help("deep prompts: learned vectors at every layer's input; prompt tuning only"))
    deep_reparam_hidden: int | None = field(default=None, metadata=_help(
        "with --deep: train the deep vectors through an MLP of this width over a learned base (P-tuning v2's "
        "reparameterisation), folded into plain vectors in the saved file; None: train them directly"))
    reference: float | None = field(default=None, metadata=_help(
        "a published figure of the task's main metric to draw on curves.png; None draws none"))
    reference_label: str = field(default="reference", metadata=_help("the legend of the reference line"))
    training_args: dict[str, Any] = field(default_factory=dict, metadata=_help(
        "other TrainingArguments fields, set over the library's defaults (evaluate and save every epoch, keep "
        "the best...), e.g. {'gradient_accumulation_steps': 2}; on the command line each is a flag"))
    # fmt: on

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
        if (
            not isinstance(self.num_virtual_tokens, int)
            or not 1 <= self.num_virtual_tokens <= MAX_VIRTUAL_TOKENS
        ):
            raise ValueError(
                f"num_virtual_tokens must be an int between 1 and {MAX_VIRTUAL_TOKENS:,}, got {self.num_virtual_tokens!r}"
            )
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
        from transformers.trainer_utils import SchedulerType  # imports torch: only when a config is made

        schedulers = [s.value for s in SchedulerType]
        if self.scheduler not in schedulers:
            raise ValueError(f"scheduler must be one of {schedulers}, got {self.scheduler!r}")
        if self.init == "text" and not (isinstance(self.init_text, str) and self.init_text.strip()):
            raise ValueError("init='text' needs init_text (--init-text 'classify the sentiment')")
        if self.init_from is not None and self.init == "vocab":
            self.init = "prompt"  # --init-from alone says where the prompt starts
        if (self.init == "prompt") != bool(self.init_from):
            raise ValueError(
                "init 'prompt' and init_from go together: --init-from FILE [FILE ...] names the trained prompts to "
                f"start from (init={self.init!r}, init_from={self.init_from!r})"
            )
        if self.residual_hidden is not None and (
            isinstance(self.residual_hidden, bool)
            or not isinstance(self.residual_hidden, int)
            or self.residual_hidden < 1
        ):
            raise ValueError(f"residual_hidden must be a positive int or None, got {self.residual_hidden!r}")
        check_deep_reparam(self.deep, self.deep_reparam_hidden, self.residual_hidden, owner="RunConfig")
        check_dir_target(self.output_dir, "output_dir")
        if self.resume and self.overwrite:
            raise ValueError("resume and overwrite exclude each other: continue the run, or start it over")
        if not isinstance(self.train_head, bool):
            raise ValueError(f"train_head must be True or False, got {self.train_head!r}")
        if not self.train_head and self.head_lr is not None:
            raise ValueError(
                "head_lr is the head's learning rate, but train_head=False keeps the head frozen"
            )
        if self.head_init not in HEAD_INITS:
            raise ValueError(f"head_init must be one of {list(HEAD_INITS)}, got {self.head_init!r}")
        self.training_args = check_training_overrides(self.training_args)

    def to_dict(self) -> dict[str, Any]:
        """Every field, as JSON holds it: ``RunConfig(**cfg.to_dict()) == cfg``, except the Hub token.

        ``training_args["hub_token"]`` is left out: run folders never hold secrets.

        Returns:
            Field name to value.

        Examples:
            >>> RunConfig(model="bert-base-uncased", data="my/dataset", training_args={"hub_token": "hf_x"}).to_dict()["training_args"]
            {}
        """
        out = dataclasses.asdict(self)
        out["training_args"].pop("hub_token", None)
        return out

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the settings to ``path`` (a ``.json`` file, atomically) so that ``--config path`` reruns them.

        ``resume`` and ``overwrite`` are written as ``false``: they say what to do with a used folder, not
        how to run (rerun with ``--overwrite``, or continue a killed run with ``--resume``).

        Args:
            path: The file to write; its folder is created.

        Returns:
            The path written.

        Raises:
            OSError: the file cannot be written (an existing one is left as it was).

        Examples:
            >>> RunConfig(model="bert-base-uncased", data="my/dataset").save("runs/x/run_config.json")
            PosixPath('runs/x/run_config.json')
        """
        return atomic_write_json(path, {**self.to_dict(), "resume": False, "overwrite": False})

    def load_data(self, *, with_train: bool = True) -> TaskData:
        """The run's data, as :func:`softprompt.load_data` checks it.

        Args:
            with_train: ``False``: the evaluation split only (what ``softprompt eval`` scores).

        Returns:
            The :class:`~softprompt.data.TaskData`.

        Raises:
            FileNotFoundError: the data names no folder, file or (cached) Hub data set.
            ValueError: as :func:`softprompt.load_data`.

        Examples:
            >>> import pandas as pd
            >>> pd.DataFrame({"text": ["good", "bad"] * 4, "label": [1, 0] * 4}).to_csv("texts.csv", index=False)
            >>> data = RunConfig(model="bert-base-uncased", data="texts.csv", holdout=0.25).load_data()
            >>> len(data.train), len(data.eval)
            (6, 2)
        """
        from softprompt.data import load_data

        return load_data(
            self.data, text_column=self.text_column, text_pair_column=self.text_pair_column,
            label_column=self.label_column, task=self.task, label_names=self.label_names,
            tokens_column=self.tokens_column, tags_column=self.tags_column,
            question_column=self.question_column, context_column=self.context_column,
            answers_column=self.answers_column,
            train_split=self.train_split if with_train or self.holdout is not None else None, eval_split=self.eval_split,
            train_size=self.train_size if with_train else None, eval_size=self.eval_size,
            seed=self.seed if self.data_seed is None else self.data_seed,
            config_name=self.data_config, holdout=self.holdout,
        )  # fmt: skip


# What `softprompt finetune` changes of the defaults above (a library user fine-tuning passes them too:
# RunConfig(model=m, data=d, **FINETUNE_DEFAULTS)): every weight trains, so a learning rate three orders
# lower and a larger batch; and a folder of its own.
FINETUNE_DEFAULTS: dict[str, Any] = {"lr": 2e-5, "batch_size": 32, "output_dir": "runs/finetune"}
