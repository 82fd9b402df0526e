"""End-to-end runs on a text-classification dataset: what ``softprompt train|finetune`` and the examples do.

Each run: load and subsample the data, load the model, train, score the kept artefact, reload it
from disk and predict a sentence with it, then write ``results.json`` and ``curves.png``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers

from softprompt.atomic import atomic_write_json
from softprompt.config import SoftPromptConfig
from softprompt.data import load_text_classification, tokenize_dataset
from softprompt.evaluation import evaluate_classifier
from softprompt.plots import plot_curves
from softprompt.trainer import train_prompt
from softprompt.version import __version__
from softprompt.wrapper import SoftPromptWrapper

__all__ = ["CHAPTER", "RunConfig", "run_finetune", "run_prompt_tuning", "summary"]

logger = logging.getLogger(__name__)

# The textbook chapter's published results (bert-base-uncased, full IMDb test set, one A100).
CHAPTER = {"prompt_tuning": 0.874, "finetune": 0.936}
EXAMPLE_TEXT = "This movie was absolutely fantastic! The acting was superb."


@dataclass
class RunConfig:
    """One run's settings; the defaults are the chapter's prompt-tuning setup.

    Attributes:
        model: Hub id or local folder of the encoder.
        data: Hub dataset name or local folder (see :func:`softprompt.load_text_classification`).
        train_size, eval_size: Random subsets (``None`` = the whole split), picked with ``seed``.
        epochs, lr, batch_size: the recipe; ``batch_size`` is the effective batch.
        max_length: Longest input in tokens, virtual tokens included.
        num_virtual_tokens, init: the prompt (prompt tuning only).
        bf16: Prompt tuning: frozen backbone held in bf16. Fine-tuning: bf16 autocast.
        output_dir: Where the artefact, checkpoints, ``results.json`` and ``curves.png`` go.
        seed: Seed of the subsets, the initialisation and the training order.
        eval_batch_size: Texts per forward pass when scoring.
        deep: Deep prompts: vectors at every layer's input, not only the first (prompt tuning only).
    """

    model: str = "bert-base-uncased"
    data: str = "imdb"
    train_size: int | None = 5000
    eval_size: int | None = 5000
    epochs: float = 3
    max_length: int = 512
    num_virtual_tokens: int = 20
    init: str = "vocab"
    lr: float = 1e-2
    batch_size: int = 8
    bf16: bool = False
    output_dir: str = "runs/imdb_prompt_tune"
    seed: int = 42
    eval_batch_size: int = 64
    deep: bool = False

    def __post_init__(self) -> None:
        for name in ("train_size", "eval_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive int or None, got {value!r}")
        for name in ("batch_size", "eval_batch_size", "max_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not self.epochs > 0 or not self.lr > 0:
            raise ValueError(f"epochs and lr must be > 0, got epochs={self.epochs!r}, lr={self.lr!r}")


def _versions() -> dict[str, str]:
    return {
        "softprompt": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "threads": str(torch.get_num_threads()),
        "device": "cuda:" + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }


def _per_epoch(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Training loss (mean over the epoch) and eval metrics, one row per epoch."""
    rows: dict[int, dict[str, Any]] = {}
    for entry in log_history:
        if "epoch" not in entry:
            continue
        epoch = round(entry["epoch"])
        row = rows.setdefault(epoch, {"epoch": epoch})
        if "loss" in entry:
            row["train_loss"] = entry["loss"]
        for key in ("eval_accuracy", "eval_f1", "eval_loss"):
            if key in entry and key not in row:
                row[key] = entry[key]
    return [rows[k] for k in sorted(rows) if "eval_accuracy" in rows[k]]


def _is_main_process() -> bool:
    """Under ``torchrun`` only rank 0 scores, reloads and writes results."""
    return int(os.environ.get("RANK", "0")) == 0


def _load(cfg: RunConfig) -> tuple[Any, Any, Any]:
    data = load_text_classification(
        cfg.data, train_size=cfg.train_size, eval_size=cfg.eval_size, seed=cfg.seed
    )
    tokenizer = transformers.AutoTokenizer.from_pretrained(cfg.model)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        cfg.model, num_labels=data.num_labels, id2label=data.id2label, label2id=data.label2id
    )
    return data, tokenizer, model


def _short_name(path_or_id: str) -> str:
    """``bert-base-uncased``, or a local folder's name (its parent's when it is a generic ``model``)."""
    path = Path(path_or_id)
    return path.parent.name if path.name in ("model", "models") and path.parent.name else path.name


def _results(
    cfg: RunConfig, kind: str, trained: Any, final: dict[str, float], example: Any, *, train_samples: int,
    eval_samples: int, wall: float, trainable_parameters: int, artefact: Path, artefact_bytes: int,
) -> dict[str, Any]:  # fmt: skip
    """What both kinds of run record in ``results.json``."""
    return {
        "kind": kind,
        "config": dataclasses.asdict(cfg),
        "eval_accuracy": final["eval_accuracy"],
        "eval_f1": final["eval_f1"],
        "epochs": _per_epoch(trained.log_history),
        "train_samples": train_samples,
        "eval_samples": eval_samples,
        # Trainer's wall time and samples/s include the per-epoch evaluations
        "train_seconds": trained.seconds,
        "seconds_per_epoch": trained.seconds / cfg.epochs,
        "train_samples_per_second": trained.train_metrics.get("train_samples_per_second"),
        "eval_samples_per_second": final["eval_samples_per_second"],
        "trainable_parameters": trainable_parameters,
        "artefact": str(artefact),
        "artefact_bytes": artefact_bytes,
        "best_checkpoint": trained.best_checkpoint,
        "example_prediction": {"text": EXAMPLE_TEXT, **example.to_dict()},
        "versions": _versions(),
        "wall_seconds": time.perf_counter() - wall,
    }


def _finish(cfg: RunConfig, kind: str, results: dict[str, Any], out: Path) -> dict[str, Any]:
    results["curves"] = None
    png = plot_curves(
        results["epochs"],
        out / "curves.png",
        title=f"{kind.replace('_', ' ')}: {_short_name(cfg.model)} on {_short_name(cfg.data)}, "
        f"{results['train_samples']} train / {results['eval_samples']} test reviews, max length {cfg.max_length}",
        reference_accuracy=CHAPTER[kind],
    )
    results["curves"] = str(png) if png else None
    atomic_write_json(out / "results.json", results)
    return results


def run_prompt_tuning(cfg: RunConfig) -> dict[str, Any]:
    """Prompt-tune ``cfg.model`` on ``cfg.data``; returns (and writes) ``results.json``'s content.

    Example:
        >>> run_prompt_tuning(RunConfig(model=minilm, data="../shared/data/imdb", train_size=2000))  # doctest: +SKIP
    """
    wall = time.perf_counter()
    out = Path(cfg.output_dir)
    data, tokenizer, model = _load(cfg)
    prompt_config = SoftPromptConfig(
        num_virtual_tokens=cfg.num_virtual_tokens, init=cfg.init, seed=cfg.seed, deep=cfg.deep
    )
    wrapper = SoftPromptWrapper(model, prompt_config, tokenizer=tokenizer)
    n = cfg.num_virtual_tokens
    train = tokenize_dataset(data.train, tokenizer, max_length=cfg.max_length, num_virtual_tokens=n)
    test = tokenize_dataset(data.eval, tokenizer, max_length=cfg.max_length, num_virtual_tokens=n)

    trained = train_prompt(
        wrapper, train, test, output_dir=out, num_train_epochs=cfg.epochs, learning_rate=cfg.lr,
        per_device_train_batch_size=cfg.batch_size, bf16=cfg.bf16, seed=cfg.seed,
        per_device_eval_batch_size=cfg.eval_batch_size, logging_strategy="epoch",
    )  # fmt: skip
    if not _is_main_process():
        return {}
    final = evaluate_classifier(
        wrapper,
        tokenizer,
        data.eval,
        batch_size=cfg.eval_batch_size,
        max_length=cfg.max_length,
        bf16=cfg.bf16,
    )

    # the artefact as a user gets it: the prompt file, loaded onto the frozen backbone
    reloaded = SoftPromptWrapper.from_prompt(wrapper.model, trained.prompt_path, tokenizer=tokenizer)
    example = reloaded.predict([EXAMPLE_TEXT], max_length=cfg.max_length)[0]

    results = _results(
        cfg, "prompt_tuning", trained, final, example, train_samples=len(train), eval_samples=len(test), wall=wall,
        trainable_parameters=wrapper.num_trainable_parameters(), artefact=trained.prompt_path,
        artefact_bytes=trained.prompt_path.stat().st_size,
    )  # fmt: skip
    results["prompt_config"] = prompt_config.to_dict()
    results["backbone_parameters"] = sum(p.numel() for p in wrapper.model.parameters())
    return _finish(cfg, "prompt_tuning", results, out)


def run_finetune(cfg: RunConfig) -> dict[str, Any]:
    """Fine-tune all of ``cfg.model`` on ``cfg.data`` (``num_virtual_tokens``/``init`` unused).

    Example:
        >>> run_finetune(RunConfig(model=minilm, data="../shared/data/imdb", lr=2e-5, batch_size=32))  # doctest: +SKIP
    """
    from softprompt.finetune import finetune, load_finetuned

    wall = time.perf_counter()
    out = Path(cfg.output_dir)
    data, tokenizer, model = _load(cfg)
    train = tokenize_dataset(data.train, tokenizer, max_length=cfg.max_length)
    test = tokenize_dataset(data.eval, tokenizer, max_length=cfg.max_length)

    trained = finetune(
        model, tokenizer, train, test, output_dir=out, num_train_epochs=cfg.epochs, learning_rate=cfg.lr,
        per_device_train_batch_size=cfg.batch_size, bf16=cfg.bf16, seed=cfg.seed,
        per_device_eval_batch_size=cfg.eval_batch_size, logging_strategy="epoch",
    )  # fmt: skip
    if not _is_main_process():
        return {}
    reloaded, reloaded_tokenizer = load_finetuned(trained.model_dir)
    final = evaluate_classifier(
        reloaded,
        reloaded_tokenizer,
        data.eval,
        batch_size=cfg.eval_batch_size,
        max_length=cfg.max_length,
        bf16=cfg.bf16,
    )
    from softprompt.inference import predict

    example = predict(reloaded, reloaded_tokenizer, [EXAMPLE_TEXT], max_length=cfg.max_length, bf16=cfg.bf16)[
        0
    ]
    weights = sorted(Path(trained.model_dir).glob("*.safetensors"))
    results = _results(
        cfg, "finetune", trained, final, example, train_samples=len(train), eval_samples=len(test), wall=wall,
        trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        artefact=trained.model_dir, artefact_bytes=sum(p.stat().st_size for p in weights),
    )  # fmt: skip
    return _finish(cfg, "finetune", results, out)


def summary(results: dict[str, Any]) -> str:
    """A few lines for a terminal."""
    ex = results["example_prediction"]
    return "\n".join(
        [
            f"{results['kind']}: eval_accuracy={results['eval_accuracy']:.4f} eval_f1={results['eval_f1']:.4f} "
            f"({results['eval_samples']} texts)",
            f"train: {results['seconds_per_epoch']:.1f} s/epoch, {results['train_samples_per_second']:.2f} samples/s; "
            f"eval: {results['eval_samples_per_second']:.1f} samples/s",
            f"trainable parameters: {results['trainable_parameters']:,}; artefact: {results['artefact']} "
            f"({results['artefact_bytes']:,} bytes)",
            f"reloaded artefact on {json.dumps(ex['text'])}: {ex['label_name']} ({ex['confidence']:.3f})",
        ]
    )
