"""Where a prompt file is written and read: one self-describing ``.safetensors`` file, never pickle.

Layout::

    prompt_embeddings   float32 (num_virtual_tokens, embedding_dim)
    head.<param name>   float32, the classifier head trained with the prompt (if any)
    __metadata__        str -> str: format, format_version, softprompt_version, config (JSON),
                        base_model, model_type, embedding_dim, num_virtual_tokens, num_labels,
                        id2label (JSON), temperature

Reading it needs nothing but ``safetensors``::

    from safetensors import safe_open
    with safe_open("imdb.safetensors", framework="pt") as f:
        meta = f.metadata()
        prompt = f.get_tensor("prompt_embeddings")
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from softprompt.atomic import atomic_write_bytes
from softprompt.config import SoftPromptConfig
from softprompt.version import __version__

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "HEAD_PREFIX", "PROMPT_KEY", "PromptFile", "read_prompt_file"]

FORMAT_NAME = "softprompt"
FORMAT_VERSION = "1"
PROMPT_KEY = "prompt_embeddings"
HEAD_PREFIX = "head."


@dataclass
class PromptFile:
    """The contents of a prompt file, in memory.

    Attributes:
        config: The prompt's :class:`SoftPromptConfig`.
        prompt: ``(num_virtual_tokens, embedding_dim)`` fp32 prompt vectors.
        head: Head parameters by their name in the model (``"classifier.weight"``), fp32.
        base_model: ``name_or_path`` of the model the prompt was trained on.
        model_type: ``config.model_type`` of that model (``"bert"``).
        num_labels: Classes of the head, or ``None`` for a model without one.
        id2label: Class names by id.
        temperature: Softmax temperature for calibrated confidences (1.0 = uncalibrated).
        path: Where it was read from, if it was.
    """

    config: SoftPromptConfig
    prompt: torch.Tensor
    head: dict[str, torch.Tensor] = field(default_factory=dict)
    base_model: str = ""
    model_type: str = ""
    num_labels: int | None = None
    id2label: dict[int, str] = field(default_factory=dict)
    temperature: float = 1.0
    path: str | None = None

    @property
    def embedding_dim(self) -> int:
        return int(self.prompt.shape[-1])

    def metadata(self) -> dict[str, str]:
        """The string metadata written into the file header."""
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "softprompt_version": __version__,
            "config": self.config.to_json(),
            "base_model": self.base_model,
            "model_type": self.model_type,
            "embedding_dim": str(self.embedding_dim),
            "num_virtual_tokens": str(self.config.num_virtual_tokens),
            "num_labels": "" if self.num_labels is None else str(self.num_labels),
            "id2label": json.dumps({str(k): v for k, v in sorted(self.id2label.items())}),
            "temperature": repr(float(self.temperature)),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the file atomically (temp file + rename). Returns the path.

        Raises:
            ValueError: non-finite values, or a prompt shape that disagrees with the config.
        """
        _check_tensors(str(path), self.prompt, self.head, self.config)
        if not math.isfinite(self.temperature) or self.temperature <= 0:
            raise ValueError(f"temperature must be a positive finite number, got {self.temperature!r}")
        tensors = {PROMPT_KEY: self.prompt.detach().to("cpu", torch.float32).contiguous()}
        for name, tensor in self.head.items():
            tensors[HEAD_PREFIX + name] = tensor.detach().to("cpu", torch.float32).contiguous().clone()
        return atomic_write_bytes(path, save(tensors, metadata=self.metadata()))


def _check_tensors(
    where: str, prompt: torch.Tensor, head: dict[str, torch.Tensor], config: SoftPromptConfig
) -> None:
    expected = config.num_virtual_tokens
    if prompt.dim() != 2 or prompt.shape[0] != expected:
        raise ValueError(
            f"{where}: {PROMPT_KEY} has shape {tuple(prompt.shape)} but the config says {expected} virtual tokens "
            "of shape (num_virtual_tokens, embedding_dim)"
        )
    for name, tensor in {PROMPT_KEY: prompt, **{HEAD_PREFIX + k: v for k, v in head.items()}}.items():
        if not torch.isfinite(tensor).all():
            bad = int((~torch.isfinite(tensor)).sum())
            raise ValueError(f"{where}: tensor {name!r} has {bad} NaN/inf values; refusing to use it")


def read_prompt_file(path: str | os.PathLike[str]) -> PromptFile:
    """Read and self-check a prompt file (no model needed).

    Args:
        path: A ``.safetensors`` file written by :meth:`SoftPromptWrapper.save_prompt`.

    Returns:
        The :class:`PromptFile`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a safetensors file, not a softprompt file, unreadable metadata, missing
            tensors, shapes that disagree with the metadata, or NaN/inf values. The message names
            the file.

    Example:
        >>> pf = read_prompt_file("imdb.safetensors")  # doctest: +SKIP
        >>> pf.config.num_virtual_tokens, pf.num_labels  # doctest: +SKIP
        (20, 2)
    """
    where = str(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"prompt file {where!r} does not exist")
    try:
        with safe_open(where, framework="pt") as fh:
            meta = dict(fh.metadata() or {})
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{where}: not a readable .safetensors file ({exc})") from exc

    if meta.get("format") != FORMAT_NAME:
        raise ValueError(
            f"{where}: not a softprompt prompt file (metadata 'format' is {meta.get('format')!r})"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{where}: prompt file format version {meta.get('format_version')!r} is not supported by "
            f"softprompt {__version__} (reads version {FORMAT_VERSION}); upgrade softprompt"
        )
    try:
        config = SoftPromptConfig.from_json(meta["config"])
        embedding_dim = int(meta["embedding_dim"])
        num_labels = int(meta["num_labels"]) if meta.get("num_labels") else None
        id2label = {int(k): str(v) for k, v in json.loads(meta.get("id2label") or "{}").items()}
        temperature = float(meta.get("temperature", "1.0"))
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{where}: unreadable prompt metadata ({type(exc).__name__}: {exc})") from exc

    if PROMPT_KEY not in tensors:
        raise ValueError(f"{where}: missing tensor {PROMPT_KEY!r} (found {sorted(tensors)})")
    prompt = tensors.pop(PROMPT_KEY)
    head = {key[len(HEAD_PREFIX) :]: t for key, t in tensors.items() if key.startswith(HEAD_PREFIX)}
    extra = sorted(key for key in tensors if not key.startswith(HEAD_PREFIX))
    if extra:
        raise ValueError(f"{where}: unexpected tensors {extra}")
    _check_tensors(where, prompt, head, config)
    if prompt.shape[1] != embedding_dim:
        raise ValueError(
            f"{where}: {PROMPT_KEY} has dim {prompt.shape[1]} but metadata says embedding_dim {embedding_dim}"
        )
    if config.train_head and num_labels is not None and not head:
        raise ValueError(
            f"{where}: config has train_head=True and num_labels={num_labels} but no head.* tensors"
        )
    return PromptFile(
        config=config,
        prompt=prompt.float(),
        head={k: v.float() for k, v in head.items()},
        base_model=meta.get("base_model", ""),
        model_type=meta.get("model_type", ""),
        num_labels=num_labels,
        id2label=id2label,
        temperature=temperature,
        path=where,
    )
