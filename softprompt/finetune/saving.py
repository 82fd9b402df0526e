"""Where a fine-tuned model folder is written, read back and calibrated.

The folder is what ``save_pretrained`` writes (``config.json``, ``model.safetensors``, tokenizer
files) plus ``training_args.json``; ``config.json`` goes in last, so a crash never leaves a
loadable half-written model.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
)

from softprompt.inference.calibration import TEMPERATURE_KEY, calibrate
from softprompt.utils.atomic import atomic_write_text

__all__ = ["CONFIG_NAME", "TEMPERATURE_KEY", "calibrate_finetuned", "load_finetuned", "save_finetuned"]

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"  # written last: its presence marks a complete model folder
# Files of an earlier save that `from_pretrained` could pick up next to the new ones (shards of a
# bigger model, a tokenizer of another kind); removed unless the new save rewrites them.
_STALE_PATTERNS = (
    "*.safetensors",
    "*.safetensors.index.json",
    "pytorch_model*.bin",
    "tokenizer*.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.*",
    "merges.txt",
    "*.model",
    "training_args.*",
)


def save_finetuned(
    model: transformers.PreTrainedModel,
    tokenizer: transformers.PreTrainedTokenizerBase,
    model_dir: str | os.PathLike[str],
    *,
    extra_files: Mapping[str, str] | None = None,
) -> Path:
    """Save ``model`` and ``tokenizer`` with ``save_pretrained`` (safetensors) into ``model_dir``, crash-safely.

    Everything is written to a temporary folder inside ``model_dir`` and fsynced, then moved in
    with ``os.replace`` (same file system): first the old ``config.json`` is removed, then the
    new files go in, ``config.json`` last. A crash at any point leaves either the complete new
    model or a folder without ``config.json`` that :func:`load_finetuned` refuses; never new
    weights with an old config. Other contents of ``model_dir`` (checkpoints) are left alone.

    Args:
        model: The model to save (its config carries ``id2label``).
        tokenizer: Its tokenizer.
        model_dir: The folder; created if missing.
        extra_files: ``{file name: text}`` to write alongside, e.g. ``training_args.json``.

    Returns:
        ``model_dir`` as a ``Path``.

    Examples:
        >>> save_finetuned(model, tokenizer, "runs/sentiment-bert")
        PosixPath('runs/sentiment-bert')
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".saving-", dir=model_dir))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
        new = sorted(p.name for p in tmp.iterdir())
        for name in new:
            _fsync(tmp / name)
        (model_dir / CONFIG_NAME).unlink(missing_ok=True)  # from here the old model is not loadable
        for pattern in _STALE_PATTERNS:
            for old in model_dir.glob(pattern):
                if old.is_file() and old.name not in new:
                    old.unlink()
        for name in [n for n in new if n != CONFIG_NAME] + [CONFIG_NAME]:  # config.json commits
            target = model_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(tmp / name, target)
        _fsync(model_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("saved the fine-tuned model and tokenizer to %s", model_dir)
    return model_dir


def load_finetuned(
    model_dir: str | os.PathLike[str], **model_kwargs: Any
) -> tuple[transformers.PreTrainedModel, transformers.PreTrainedTokenizerBase]:
    """Load a folder written by :func:`finetune` (or :func:`save_finetuned`), offline, in eval mode.

    Args:
        model_dir: The folder (a ``checkpoint-*`` folder inside it works too).
        **model_kwargs: Passed to ``AutoModelForSequenceClassification.from_pretrained`` (or
            ``AutoModelForTokenClassification``'s, for a folder whose ``config.json`` names a
            ``*ForTokenClassification`` architecture): ``dtype=``, ``device_map=``...

    Returns:
        ``(model, tokenizer)``. ``model.config.id2label`` holds the class names and
        ``model.config.softprompt_temperature`` the calibrated temperature (1.0 if never calibrated).

    Raises:
        FileNotFoundError: ``model_dir`` is not a folder with a ``config.json`` (nothing is looked
            up on the Hugging Face Hub).

    Examples:
        >>> from softprompt import predict
        >>> _ = save_finetuned(model, tokenizer, "runs/sentiment-bert")
        >>> loaded, loaded_tokenizer = load_finetuned("runs/sentiment-bert")
        >>> predict(loaded, loaded_tokenizer, ["superb"], temperature=loaded.config.softprompt_temperature)
        [Prediction(label=..., label_name=..., confidence=...)]
    """
    path = Path(model_dir)
    if not (path / CONFIG_NAME).is_file():
        what = "does not exist" if not path.exists() else f"has no {CONFIG_NAME}"
        raise FileNotFoundError(
            f"{str(path)!r} {what}; pass the output_dir of a finished finetune() run (an interrupted "
            "save leaves no config.json: use one of its checkpoint-* folders)"
        )
    architectures = (
        getattr(AutoConfig.from_pretrained(path, local_files_only=True), "architectures", None) or []
    )
    auto = AutoModelForSequenceClassification
    if any(name.endswith("ForTokenClassification") for name in architectures):
        auto = AutoModelForTokenClassification
    elif any(name.endswith("ForQuestionAnswering") for name in architectures):
        auto = transformers.AutoModelForQuestionAnswering
    model = auto.from_pretrained(path, local_files_only=True, **model_kwargs)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if not hasattr(model.config, TEMPERATURE_KEY):
        setattr(model.config, TEMPERATURE_KEY, 1.0)
    return model.eval(), tokenizer


def calibrate_finetuned(
    model: transformers.PreTrainedModel,
    tokenizer: transformers.PreTrainedTokenizerBase,
    texts: Sequence[str],
    labels: Sequence[int] | torch.Tensor,
    *,
    model_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 32,
    max_length: int | None = None,
    bf16: bool = False,
) -> float:
    """Fit a softmax temperature on held-out data and keep it as ``config.softprompt_temperature``.

    Args:
        model: The fine-tuned model.
        tokenizer: Its tokenizer.
        texts: Validation texts (not the training data: there the model is overconfident).
        labels: Their class ids.
        model_dir: A saved model folder whose ``config.json`` gets the temperature (atomically).
        batch_size: As in :func:`softprompt.inference.predict_logits`.
        max_length: As in :func:`softprompt.inference.predict_logits`.
        bf16: As in :func:`softprompt.inference.predict_logits`.

    Returns:
        The temperature, also set on ``model.config``.

    Raises:
        ValueError: not one label per text, or no texts.
        FileNotFoundError: ``model_dir`` has no ``config.json``.

    Examples:
        >>> folder = save_finetuned(model, tokenizer, "runs/sentiment-bert")
        >>> t = calibrate_finetuned(model, tokenizer, ["a great product", "a dull product"], [1, 0], model_dir=folder)
        >>> load_finetuned(folder)[0].config.softprompt_temperature == t
        True
    """
    if model_dir is not None and not (Path(model_dir) / CONFIG_NAME).is_file():
        raise FileNotFoundError(
            f"{str(model_dir)!r} has no {CONFIG_NAME}; pass a folder written by finetune()"
        )
    temperature = calibrate(
        model, tokenizer, texts, labels, batch_size=batch_size, max_length=max_length, bf16=bf16
    )
    if model_dir is not None:
        atomic_write_text(Path(model_dir) / CONFIG_NAME, model.config.to_json_string())
    logger.info("fitted temperature %.3f on %d texts", temperature, len(texts))
    return temperature


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk, so a rename never points at unwritten data."""
    if path.is_dir() and os.name != "posix":
        return  # folders cannot be opened for fsync on Windows
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
