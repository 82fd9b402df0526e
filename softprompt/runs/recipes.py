"""End-to-end runs on any sequence-task dataset: what ``softprompt train|finetune`` and the examples do.

Each run: load and check the data, load the model for its task, train, score the kept artefact,
reload it from disk and score it again, then write ``results.json`` and ``curves.png``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import torch
import transformers

from softprompt.core.config import SoftPromptConfig
from softprompt.core.constants import (
    CARD_NAME,
    PEFT_CONFIG_NAME,
    PEFT_WEIGHTS_NAME,
    PROMPT_NAME,
    TRAINING_ARGS_FILE,
)
from softprompt.core.task import Task
from softprompt.data import TaskData
from softprompt.inference.evaluate import evaluate_model
from softprompt.runs.config import RUN_CONFIG_FILE, RunConfig
from softprompt.runs.loading import load_run
from softprompt.runs.overrides import HUB_ARGS, hub_target
from softprompt.runs.plots import plot_curves
from softprompt.tasks import family_for
from softprompt.training.arguments import PROMPT_WARMUP
from softprompt.training.checkpoints import checkpoint_is_complete
from softprompt.training.head_fit import fit_regression_head
from softprompt.training.trainer import train_prompt
from softprompt.utils.atomic import atomic_write_json
from softprompt.utils.cpu import cpu_vendor
from softprompt.version import __version__
from softprompt.wrapper.model import SoftPromptWrapper

__all__ = ["RunConfig", "run_finetune", "run_prompt_tuning", "summary"]

logger = logging.getLogger(__name__)


def _versions() -> dict[str, str]:
    return {
        "softprompt": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
        "cpu_vendor": cpu_vendor(),
        "threads": str(torch.get_num_threads()),
        "device": "cuda:" + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }


def _per_epoch(log_history: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Training loss (mean over the epoch) and eval metrics, one row per epoch."""
    rows: dict[int, dict[str, Any]] = {}
    for entry in log_history:
        if "epoch" not in entry:
            continue
        row = rows.setdefault(round(entry["epoch"]), {"epoch": round(entry["epoch"])})
        if "loss" in entry:
            row["train_loss"] = entry["loss"]
        for key, value in entry.items():
            if key.startswith("eval_") and key not in row and not key.endswith(("runtime", "per_second")):
                row[key] = value
    return [rows[k] for k in sorted(rows) if f"eval_{metric}" in rows[k]]


def _is_main_process() -> bool:
    """Under ``torchrun`` only rank 0 scores, reloads and writes results."""
    return int(os.environ.get("RANK", "0")) == 0


# what a run writes at the top of its folder, besides the artefact that the next run rewrites
_RUN_FILES = (
    "results.json",
    "curves.png",
    TRAINING_ARGS_FILE,
    CARD_NAME,
    PEFT_CONFIG_NAME,
    PEFT_WEIGHTS_NAME,
)


def _prepare_run_dir(cfg: RunConfig) -> None:
    """A used run folder needs ``resume`` (continue) or ``overwrite`` (start over): never two runs mixed.
    Then the run's resolved settings go to ``run_config.json`` (which alone does not make a folder used)."""
    out = Path(cfg.output_dir)
    checkpoints = sorted(out.glob("checkpoint-*")) if out.is_dir() else []
    used = bool(checkpoints) or any((out / name).exists() for name in (*_RUN_FILES, PROMPT_NAME))
    if cfg.resume:
        if not checkpoints:
            raise ValueError(f"nothing to resume in {str(out)!r}: it has no checkpoint-* folder")
        if not _has_complete_checkpoint(cfg):
            logger.warning(  # killed while writing its first checkpoint: there is nothing to continue from
                "--resume: %s holds no complete checkpoint (the run stopped before its first one was saved); "
                "starting the run from the beginning",
                out,
            )
    elif used and not cfg.overwrite:
        raise ValueError(
            f"{str(out)!r} holds an earlier run; pass --resume to continue it or --overwrite to start over "
            "(or choose another --output-dir)"
        )
    elif used:  # overwrite: the old checkpoints would otherwise be rotated and compared with the new ones
        for folder in checkpoints:
            shutil.rmtree(folder)
        for name in _RUN_FILES:
            (out / name).unlink(missing_ok=True)
        logger.warning(
            "--overwrite: removed %d checkpoints and the results of the earlier run in %s",
            len(checkpoints),
            out,
        )
    cfg.save(out / RUN_CONFIG_FILE)


def _has_complete_checkpoint(cfg: RunConfig) -> bool:
    out = Path(cfg.output_dir)
    return out.is_dir() and any(checkpoint_is_complete(folder) for folder in out.glob("checkpoint-*"))


def _recipe(cfg: RunConfig, *, warmup: float) -> dict[str, Any]:
    """The ``train_prompt``/``finetune`` arguments both kinds of run take from the config
    (``warmup``: the kind's default, used when ``cfg.warmup`` is ``None``), ``cfg.training_args`` over them."""
    return {
        "output_dir": Path(cfg.output_dir), "num_train_epochs": cfg.epochs, "learning_rate": cfg.lr,
        "per_device_train_batch_size": cfg.batch_size, "bf16": cfg.bf16, "seed": cfg.seed,
        "per_device_eval_batch_size": cfg.eval_batch_size, "logging_strategy": "epoch",
        "warmup_steps": warmup if cfg.warmup is None else cfg.warmup,
        # every rank decides alike: a folder whose checkpoints are all incomplete starts again from step 0
        "resume_from_checkpoint": True if cfg.resume and _has_complete_checkpoint(cfg) else None,
        "lr_scheduler_type": cfg.scheduler,
        "full_determinism": cfg.deterministic,
    } | {k: v for k, v in cfg.training_args.items() if k not in HUB_ARGS}  # fmt: skip


def _scoring(cfg: RunConfig, data: TaskData) -> dict[str, Any]:
    """How the kept artefact is scored, after training and after reloading (the same, so they agree)."""
    score = {"batch_size": cfg.eval_batch_size, "max_length": cfg.max_length, "bf16": cfg.bf16}
    options = {"stride": cfg.doc_stride, "max_answer_length": cfg.max_answer_length}
    return score | {k: v for k, v in options.items() if k in family_for(data.task).predict_options}


def _rows(
    cfg: RunConfig, data: TaskData, model: Any, tokenizer: Any, num_virtual_tokens: int = 0
) -> tuple[Any, Any]:
    """The tokenized training and evaluation rows of a run, as the task's family makes them."""
    family = family_for(data.task)
    sizes = {"max_length": cfg.max_length, "num_virtual_tokens": num_virtual_tokens, "stride": cfg.doc_stride}
    return tuple(family.tokenize(split, model, tokenizer, **sizes) for split in (data.train, data.eval))


def _short_name(path_or_id: str) -> str:
    """``bert-base-uncased``, or a local folder's name (its parent's when it is a generic ``model``)."""
    path = Path(path_or_id)
    return path.parent.name if path.name in ("model", "models") and path.parent.name else path.name


def _results(
    cfg: RunConfig, kind: str, data: TaskData, trained: Any, final: dict[str, float], reloaded: dict[str, float],
    *, wall: float, trainable_parameters: int, artefact: Path, artefact_bytes: int,
) -> dict[str, Any]:  # fmt: skip
    """What both kinds of run record in ``results.json``."""
    metric = data.task.best_metric
    return {
        "kind": kind,
        "config": cfg.to_dict(),  # without secrets
        "task": data.task.to_dict(),
        "is_pair": data.is_pair,
        "label_names": data.label_names,
        "eval_split": data.eval_split,
        "metric": metric,
        # the artefact as a user gets it (reloaded from disk); eval_metrics is the in-memory model's, which
        # can differ in the last float digits for a fine-tuned folder (not for prompt files: tested equal)
        f"eval_{metric}": reloaded[f"eval_{metric}"],
        "eval_metrics": final,
        "reloaded_eval_metrics": reloaded,
        "epochs": _per_epoch(trained.log_history, metric),
        "train_samples": len(data.train),
        "eval_samples": len(data.eval),
        # Trainer's wall time and samples/s include the per-epoch evaluations
        "train_seconds": trained.seconds,
        "seconds_per_epoch": trained.seconds / cfg.epochs,
        "train_samples_per_second": trained.train_metrics.get("train_samples_per_second"),
        "eval_samples_per_second": final["eval_samples_per_second"],
        "trainable_parameters": trainable_parameters,
        "artefact": str(artefact),
        "artefact_bytes": artefact_bytes,
        "best_checkpoint": trained.best_checkpoint,
        "versions": _versions(),
        "wall_seconds": time.perf_counter() - wall,
    }


def _finish(cfg: RunConfig, kind: str, results: dict[str, Any], out: Path) -> dict[str, Any]:
    what = "pairs" if results["is_pair"] else "texts"
    png = plot_curves(
        results["epochs"],
        out / "curves.png",
        title=f"{'deep ' if cfg.deep and kind == 'prompt_tuning' else ''}{kind.replace('_', ' ')}: {_short_name(cfg.model)} on {_short_name(cfg.data)} ({results['task']['type']}), "
        f"{results['train_samples']} train / {results['eval_samples']} eval {what}, max length {cfg.max_length}",
        metric=results["metric"],
        reference=cfg.reference,
        reference_label=cfg.reference_label,
    )
    results["curves"] = str(png) if png else None
    atomic_write_json(out / "results.json", results)
    return results


def run_prompt_tuning(cfg: RunConfig) -> dict[str, Any]:
    """Prompt-tune ``cfg.model`` on ``cfg.data``; returns (and writes) ``results.json``'s content.

    What ``softprompt train`` runs: load the data and model, start a new regression head at the least-squares
    fit where ``cfg.head_init`` says so (:func:`~softprompt.fit_regression_head`; ``"auto"``: deep prompts), train
    with :func:`~softprompt.train_prompt`,
    score the prompt, reload it from its file in the same process and score it again, then write
    ``results.json``, ``run_config.json`` and ``curves.png`` into ``cfg.output_dir``.

    Args:
        cfg: The run's settings.

    Returns:
        ``results.json``'s content: the metrics per epoch (``epochs``), of the trained prompt
        (``eval_metrics``) and of the file reloaded (``reloaded_eval_metrics``), sizes and times.

    Raises:
        FileExistsError: ``cfg.output_dir`` holds another run (pass ``overwrite=True`` or ``resume=True``).
        ValueError: settings or data the run cannot use (the message says which).

    Examples:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"text": ["a great product", "a dull product"] * 8, "label": [1, 0] * 8})
        >>> frame.to_csv("texts.csv", index=False)
        >>> cfg = RunConfig(model="bert-base-uncased", data="texts.csv", holdout=0.25, epochs=1,
        ...                 num_virtual_tokens=4, max_length=32, output_dir="runs/pt")
        >>> results = run_prompt_tuning(cfg)
        >>> results["metric"], results["eval_metrics"]["eval_accuracy"] == results["reloaded_eval_metrics"]["eval_accuracy"]
        ('accuracy', True)
    """
    wall = time.perf_counter()
    out = Path(cfg.output_dir)
    hub = hub_target(cfg.training_args, cfg.output_dir, "prompt_tuning")
    if _is_main_process():
        _prepare_run_dir(cfg)
    transformers.set_seed(cfg.seed)  # a head the checkpoint lacks is initialised from this seed
    data, tokenizer, model, fit_head = load_run(cfg)
    prompt_config = SoftPromptConfig(
        num_virtual_tokens=cfg.num_virtual_tokens,
        init=cfg.init,
        init_text=cfg.init_text,
        init_from=cfg.init_from,
        residual_hidden=cfg.residual_hidden,
        seed=cfg.seed,
        deep=cfg.deep,
        deep_reparam_hidden=cfg.deep_reparam_hidden,
        placement=cfg.placement,
        label_words=cfg.label_words,
        train_head=cfg.train_head,
    )
    wrapper = SoftPromptWrapper(model, prompt_config, tokenizer=tokenizer)
    wrapper.max_input_length(
        cfg.max_length
    )  # room for text after the virtual tokens, checked before training
    train, test = _rows(cfg, data, wrapper, wrapper.tokenizer, cfg.num_virtual_tokens)
    head_fit = None
    if fit_head and wrapper.slot().head_given:  # --init-from brought a trained head along
        if cfg.head_init == "auto":
            fit_head = False
            logger.info("head_init='auto': the head came with the init_from prompts; not fitted")
        else:
            logger.warning("head_init='fit': the head the init_from prompts brought is replaced by the fit")
    if fit_head:  # linear probing first: a new regression head starts at the least-squares fit
        head_fit = fit_regression_head(wrapper, train, seed=cfg.seed)
        logger.info(
            "head_init='fit': %s fitted on %d rows in %.1f s (MSE %.4g -> %.4g)",
            head_fit.layer, head_fit.rows, head_fit.seconds, head_fit.mse_before, head_fit.mse_after,
        )  # fmt: skip

    trained_parameters = wrapper.num_trainable_parameters()  # a reparameterisation's MLP included
    trained = train_prompt(
        wrapper, train, test, head_learning_rate=cfg.head_lr, **_recipe(cfg, warmup=PROMPT_WARMUP)
    )
    if not _is_main_process():
        return {}
    score = _scoring(cfg, data)
    final = evaluate_model(wrapper, tokenizer, data.eval, **score)
    # the artefact as a user gets it: the prompt file, loaded onto the frozen backbone
    reloaded = SoftPromptWrapper.from_prompt(wrapper.model, trained.prompt_path, tokenizer=tokenizer)
    again = evaluate_model(reloaded, tokenizer, data.eval, **score)
    results = _results(
        cfg, "prompt_tuning", data, trained, final, again, wall=wall,
        trainable_parameters=trained_parameters, artefact=trained.prompt_path,
        artefact_bytes=trained.prompt_path.stat().st_size,
    )  # fmt: skip
    results["saved_parameters"] = wrapper.num_trainable_parameters()  # after folding a residual or deep MLP
    results["prompt_config"] = prompt_config.to_dict()
    if head_fit is not None:
        results["head_fit"] = dataclasses.asdict(head_fit)
    results["backbone_parameters"] = sum(p.numel() for p in wrapper.model.parameters())
    # the run folder is a prompt folder: the same prompt file, a model card with the reloaded scores, PEFT files
    card_metrics = {k: v for k, v in again.items() if not k.endswith(("runtime", "per_second"))}
    reloaded.save_pretrained(out, metrics=card_metrics)
    results = _finish(cfg, "prompt_tuning", results, out)
    if hub is not None:
        results["hub"] = str(reloaded.push_to_hub(**hub, metrics=card_metrics))
        atomic_write_json(out / "results.json", results)
    return results


def run_finetune(cfg: RunConfig) -> dict[str, Any]:
    """Fine-tune all of ``cfg.model`` on ``cfg.data`` (``num_virtual_tokens``/``init``/``deep`` unused).

    What ``softprompt finetune`` runs: as :func:`run_prompt_tuning`, with
    :func:`softprompt.finetune.finetune` and the model folder it saves.

    Args:
        cfg: The run's settings (:data:`~softprompt.runs.config.FINETUNE_DEFAULTS` are fine-tuning's).

    Returns:
        ``results.json``'s content.

    Raises:
        FileExistsError: ``cfg.output_dir`` holds another run.
        ValueError: a prompt-tuning setting (``head_lr``, ``train_head=False``, ``head_init='fit'``, ``init_from``, ``residual_hidden``, ``deep``, ``deep_reparam_hidden``, text-to-label), or settings or data the run cannot use.

    Examples:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"text": ["a great product", "a dull product"] * 8, "label": [1, 0] * 8})
        >>> frame.to_csv("texts.csv", index=False)
        >>> cfg = RunConfig(model="bert-base-uncased", data="texts.csv", holdout=0.25, epochs=1, lr=2e-5,
        ...                 batch_size=32, max_length=32, output_dir="runs/ft")
        >>> results = run_finetune(cfg)
        >>> results["kind"], sorted(results["reloaded_eval_metrics"])[:2]
        ('finetune', ['eval_accuracy', 'eval_f1'])
    """
    from softprompt.finetune import finetune, load_finetuned

    if cfg.head_lr is not None:
        raise ValueError("head_lr is a prompt-tuning setting: fine-tuning trains every weight at lr")
    if not cfg.train_head:
        raise ValueError(
            "train_head=False is a prompt-tuning setting: fine-tuning trains the head with the model"
        )
    prompt_settings = {
        "init_from": cfg.init_from is not None,
        "residual_hidden": cfg.residual_hidden is not None,
        "deep": cfg.deep,  # would otherwise be read by nothing: a fine-tuned model, not deep prompts
        "deep_reparam_hidden": cfg.deep_reparam_hidden is not None,
    }
    if any(prompt_settings.values()):
        named = ", ".join(name for name, given in prompt_settings.items() if given)
        raise ValueError(f"{named}: prompt-tuning settings; fine-tuning has no prompt")
    if cfg.head_init == "fit":
        raise ValueError(
            "head_init='fit' is a prompt-tuning setting: fine-tuning trains the head with the model"
        )
    if cfg.task is not None and not Task(cfg.task).has_head:
        raise ValueError(
            "text-to-label is a prompt-tuning task: fine-tuning a whole language model is not supported"
        )
    wall = time.perf_counter()
    out = Path(cfg.output_dir)
    hub_target(cfg.training_args, cfg.output_dir, "finetune")
    if _is_main_process():
        _prepare_run_dir(cfg)
    transformers.set_seed(cfg.seed)  # the new head's initialisation
    data, tokenizer, model, _ = load_run(cfg)  # fine-tuning trains the head with the model: no fit
    train, test = _rows(cfg, data, model, tokenizer)

    trained = finetune(model, tokenizer, train, test, **_recipe(cfg, warmup=0.0))
    if not _is_main_process():
        return {}
    score = _scoring(cfg, data)
    final = evaluate_model(model, tokenizer, data.eval, **score)
    reloaded, reloaded_tokenizer = load_finetuned(trained.model_dir)
    again = evaluate_model(reloaded, reloaded_tokenizer, data.eval, **score)
    weights = sorted(Path(trained.model_dir).glob("*.safetensors"))
    results = _results(
        cfg, "finetune", data, trained, final, again, wall=wall,
        trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        artefact=trained.model_dir, artefact_bytes=sum(p.stat().st_size for p in weights),
    )  # fmt: skip
    return _finish(cfg, "finetune", results, out)


def summary(results: dict[str, Any]) -> str:
    """A few lines for a terminal."""
    metrics = " ".join(
        f"{k}={v:.4f}"
        for k, v in results["eval_metrics"].items()
        if not k.endswith(("runtime", "per_second", "samples"))
    )
    what = "pairs" if results["is_pair"] else "texts"
    saved = results.get("saved_parameters", results["trainable_parameters"])  # fewer where an MLP was folded
    return "\n".join(
        [
            f"{results['kind']} ({results['task']['type']}): {metrics} ({results['eval_samples']} {what}, split "
            f"{results['eval_split']!r})",
            f"train: {results['seconds_per_epoch']:.1f} s/epoch, {results['train_samples_per_second']:.2f} samples/s; "
            f"eval: {results['eval_samples_per_second']:.1f} samples/s",
            f"trainable parameters: {results['trainable_parameters']:,} ({saved:,} in the file); artefact: {results['artefact']} "
            f"({results['artefact_bytes']:,} bytes)",
            f"reloaded artefact: {results['metric']}={results['reloaded_eval_metrics']['eval_' + results['metric']]!r} "
            f"(in memory after training: {results['eval_metrics']['eval_' + results['metric']]!r})",
        ]
    )
