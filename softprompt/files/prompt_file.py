"""Where a prompt file is written and read: one self-describing ``.safetensors`` file, never pickle.

Layout::

    prompt_embeddings   float32 (num_virtual_tokens, embedding_dim)
    head.<param name>   float32, the classifier head trained with the prompt (if any)
    deep_prompts        float32 (num_layers - 1, num_virtual_tokens, hidden_size), deep prompts only:
                        the vectors at the input of layers 1..L-1 (folded if reparameterised)
    deep_reparam.<name> float32, deep prompts trained through an MLP only: its state, so training
                        can resume exactly; loading ignores it
    prompt_reparam.<name> float32, prompts trained through a residual MLP only: the unfolded vectors
                        (``prompt``) and the MLP (``residual.*``), for resuming; loading ignores it
    __metadata__        str -> str: format, format_version, softprompt_version, config (JSON),
                        base_model, model_type, embedding_dim, num_virtual_tokens, num_labels,
                        id2label (JSON), task (JSON: {"type": "classification" | "multi-label" |
                        "regression"}, empty for a model without a sequence head), temperature;
                        num_layers, hidden_size (deep prompts only); base_fingerprint (JSON: model
                        type, vocabulary and embedding sizes, a hash of the input embeddings)

Reading it needs nothing but ``safetensors``::

    from safetensors import safe_open
    with safe_open("sentiment.safetensors", framework="pt") as f:
        meta = f.metadata()
        prompt = f.get_tensor("prompt_embeddings")
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from softprompt.core.config import SoftPromptConfig
from softprompt.core.task import Task, normalize_id2label
from softprompt.files.checks import (
    DEEP_KEY,
    DEEP_REPARAM_PREFIX,
    HEAD_PREFIX,
    MAX_DIM,
    MAX_LAYERS,
    MAX_NUM_LABELS,
    PROMPT_KEY,
    PROMPT_REPARAM_PREFIX,
    bounded_int,
    check_labels,
    check_task,
    check_temperature,
    check_tensors,
)
from softprompt.utils.atomic import atomic_write_bytes
from softprompt.version import __version__

__all__ = [
    "DEEP_KEY",
    "DEEP_REPARAM_PREFIX",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "HEAD_PREFIX",
    "PROMPT_KEY",
    "PROMPT_REPARAM_PREFIX",
    "PromptFile",
    "canonical_header",
    "read_prompt_file",
]

FORMAT_NAME = "softprompt"
FORMAT_VERSION = "1"


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
        task: The :class:`~softprompt.Task` the head was trained for; ``None`` without a
            sequence-level head (a bare encoder or a token-classification head).
        temperature: Softmax temperature for calibrated confidences (1.0 = uncalibrated).
        deep_prompts: ``(num_layers - 1, num_virtual_tokens, hidden_size)`` fp32 vectors of a deep
            prompt (``config.deep``), else ``None``.
        deep_reparam: State of the MLP a deep prompt was trained through (see
            ``SoftPromptConfig.deep_reparam_hidden``, ``residual_hidden``), for resuming training; ``{}`` otherwise.
        prompt_reparam: A residual prompt's training state (``SoftPromptConfig.residual_hidden``): the
            unfolded vectors ``"prompt"`` and the MLP's ``"residual.*"``; ``{}`` otherwise. ``prompt``
            holds the folded vectors either way.
        base_fingerprint: The base model's :func:`~softprompt.files.checks.base_fingerprint`
            (``{}`` in files written before it was recorded).
        path: Where it was read from, if it was.

    Examples:
        >>> pf = wrapper.prompt_file()
        >>> pf.prompt.shape, pf.num_labels, pf.task
        (torch.Size([4, 32]), 2, Task(type=<TaskType.CLASSIFICATION: 'classification'>, threshold=0.5))
        >>> from softprompt import read_prompt_file
        >>> torch.equal(read_prompt_file(pf.save("p.safetensors")).prompt, pf.prompt)
        True
    """

    config: SoftPromptConfig
    prompt: torch.Tensor
    head: dict[str, torch.Tensor] = field(default_factory=dict)
    base_model: str = ""
    model_type: str = ""
    num_labels: int | None = None
    id2label: dict[int, str] = field(default_factory=dict)
    task: Task | None = None
    temperature: float = 1.0
    deep_prompts: torch.Tensor | None = None
    deep_reparam: dict[str, torch.Tensor] = field(default_factory=dict)
    prompt_reparam: dict[str, torch.Tensor] = field(default_factory=dict)
    base_fingerprint: dict[str, object] = field(default_factory=dict)
    path: str | None = None

    @property
    def embedding_dim(self) -> int:
        """Width of the prompt vectors: the base model's input embedding size."""
        return int(self.prompt.shape[-1])

    @property
    def num_layers(self) -> int | None:
        """Transformer layers of the model a deep prompt was made for (``None`` for a shallow prompt)."""
        return None if self.deep_prompts is None else int(self.deep_prompts.shape[0]) + 1

    @property
    def hidden_size(self) -> int | None:
        """Hidden size of the model a deep prompt was made for (``None`` for a shallow prompt)."""
        return None if self.deep_prompts is None else int(self.deep_prompts.shape[-1])

    def metadata(self) -> dict[str, str]:
        """The string metadata written into the file header.

        Returns:
            Key to string value (JSON for the structured ones): format and versions, the config, the base
            model, labels, task, temperature, and the deep prompt's shape.

        Examples:
            >>> meta = wrapper.prompt_file().metadata()
            >>> meta["format"], meta["embedding_dim"]
            ('softprompt', '32')
        """
        meta = {
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
            "task": "" if self.task is None else json.dumps(self.task.to_dict(), sort_keys=True),
            "temperature": repr(float(self.temperature)),
        }
        if self.deep_prompts is not None:
            meta["num_layers"] = str(self.num_layers)
            meta["hidden_size"] = str(self.hidden_size)
        if self.base_fingerprint:
            meta["base_fingerprint"] = json.dumps(self.base_fingerprint, sort_keys=True)
        return meta

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the file atomically (temp file + rename).

        Args:
            path: The file to write (its folder must exist).

        Returns:
            The path written.

        Raises:
            ValueError: what :func:`read_prompt_file` would refuse (see :meth:`to_bytes`).
            OSError: the file cannot be written (an existing one is left as it was).

        Examples:
            >>> wrapper.prompt_file().save("sentiment.safetensors")
            PosixPath('sentiment.safetensors')
        """
        return atomic_write_bytes(path, self.to_bytes(str(path)))

    def to_bytes(self, where: str = "prompt file") -> bytes:
        """The file's bytes, checked first (what :meth:`save` writes).

        Args:
            where: What to call the file in error messages.

        Returns:
            The safetensors file's bytes, its header keys sorted (equal contents give equal bytes).

        Raises:
            ValueError: what :func:`read_prompt_file` would refuse: non-finite or out-of-range values, a
                prompt shape that disagrees with the config, labels that do not fit the head, a
                temperature outside the calibration range.

        Examples:
            >>> blob = wrapper.prompt_file().to_bytes()
            >>> blob == wrapper.prompt_file().to_bytes()
            True
        """
        check_tensors(
            where,
            self.prompt,
            self.head,
            self.config,
            self.deep_prompts,
            self.deep_reparam,
            self.prompt_reparam,
        )
        check_task(where, self.task, self.num_labels)
        check_labels(where, self.num_labels, self.id2label, self.head)
        check_temperature(where, self.temperature)
        tensors = {PROMPT_KEY: self.prompt.detach().to("cpu", torch.float32).contiguous()}
        for name, tensor in self.head.items():
            tensors[HEAD_PREFIX + name] = tensor.detach().to("cpu", torch.float32).contiguous().clone()
        if self.deep_prompts is not None:
            tensors[DEEP_KEY] = self.deep_prompts.detach().to("cpu", torch.float32).contiguous().clone()
        for name, tensor in self.deep_reparam.items():
            tensors[DEEP_REPARAM_PREFIX + name] = (
                tensor.detach().to("cpu", torch.float32).contiguous().clone()
            )
        for name, tensor in self.prompt_reparam.items():
            tensors[PROMPT_REPARAM_PREFIX + name] = (
                tensor.detach().to("cpu", torch.float32).contiguous().clone()
            )
        return canonical_header(save(tensors, metadata=self.metadata()))


def canonical_header(blob: bytes) -> bytes:
    """``blob`` (a safetensors file) with its JSON header keys sorted, so equal contents give equal bytes.

    ``safetensors`` writes the metadata in hash-map order, which changes from process to process: two
    runs that trained the same prompt wrote files that differed only there. The sorted header has the
    same length (same keys and values, compact JSON); where it would not, ``blob`` is returned as is.

    Examples:
        >>> from safetensors.torch import save
        >>> a = canonical_header(save({"x": torch.zeros(1)}, metadata={"b": "1", "a": "2"}))
        >>> a == canonical_header(save({"x": torch.zeros(1)}, metadata={"a": "2", "b": "1"}))
        True
    """
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + size])
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(text) > size:
        return blob
    return blob[:8] + text + b" " * (size - len(text)) + blob[8 + size :]


def read_prompt_file(path: str | os.PathLike[str]) -> PromptFile:
    """Read and self-check a prompt file (no model needed).

    Args:
        path: A ``.safetensors`` file written by :meth:`SoftPromptWrapper.save_prompt`.

    Returns:
        The :class:`PromptFile`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a safetensors file, not a softprompt file, unreadable metadata, missing
            tensors (``deep_prompts`` when the config says ``deep``), shapes that disagree with the
            metadata (a deep prompt's ``num_layers``/``hidden_size``), or NaN/inf values. The
            message names the file.

    Examples:
        >>> path = wrapper.save_prompt("sentiment.safetensors")
        >>> pf = read_prompt_file("sentiment.safetensors")
        >>> pf.config.num_virtual_tokens, pf.num_labels
        (4, 2)
    """
    where = str(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"prompt file {where!r} does not exist")
    try:
        with safe_open(where, framework="pt") as fh:
            meta = dict(fh.metadata() or {})
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except (SafetensorError, OSError, ValueError, TypeError, RuntimeError, NotImplementedError) as exc:
        raise ValueError(f"{where}: not a readable .safetensors file ({type(exc).__name__}: {exc})") from exc
    odd = {k: str(t.dtype) for k, t in tensors.items() if t.dtype != torch.float32}
    if odd:
        raise ValueError(f"{where}: prompt files hold float32 tensors only; found {odd}")

    if meta.get("format") != FORMAT_NAME:
        raise ValueError(
            f"{where}: not a softprompt prompt file (metadata 'format' is {meta.get('format')!r})"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{where}: prompt file format version {meta.get('format_version')!r} is not supported by "
            f"softprompt {__version__} (reads version {FORMAT_VERSION}); upgrade softprompt"
        )
    try:  # every number bounded before anything is built from it
        config = SoftPromptConfig.from_json(meta["config"])
        embedding_dim = bounded_int(where, "embedding_dim", meta["embedding_dim"], 1, MAX_DIM)
        num_labels = (
            bounded_int(where, "num_labels", meta["num_labels"], 1, MAX_NUM_LABELS)
            if meta.get("num_labels")
            else None
        )
        id2label = normalize_id2label(json.loads(meta.get("id2label") or "{}"), f"{where}: id2label")
        temperature = check_temperature(where, meta.get("temperature", "1.0"))
        task = Task.from_dict(json.loads(meta["task"])) if meta.get("task") else None
        deep_dims = (
            (
                bounded_int(where, "num_layers", meta["num_layers"], 2, MAX_LAYERS),
                bounded_int(where, "hidden_size", meta["hidden_size"], 1, MAX_DIM),
            )
            if config.deep
            else None
        )
        fingerprint = json.loads(meta["base_fingerprint"]) if meta.get("base_fingerprint") else {}
        if not isinstance(fingerprint, dict):
            raise ValueError(f"base_fingerprint is {type(fingerprint).__name__}, not an object")
    except (KeyError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise ValueError(
            f"{where}: unreadable prompt metadata ({type(exc).__name__}: {str(exc)[:200]})"
        ) from exc

    if PROMPT_KEY not in tensors:
        raise ValueError(f"{where}: missing tensor {PROMPT_KEY!r} (found {sorted(tensors)})")
    prompt = tensors.pop(PROMPT_KEY)
    deep_prompts = tensors.pop(DEEP_KEY, None)
    head = {key[len(HEAD_PREFIX) :]: t for key, t in tensors.items() if key.startswith(HEAD_PREFIX)}
    reparam = {
        key[len(DEEP_REPARAM_PREFIX) :]: t
        for key, t in tensors.items()
        if key.startswith(DEEP_REPARAM_PREFIX)
    }
    prompt_reparam = {
        key[len(PROMPT_REPARAM_PREFIX) :]: t
        for key, t in tensors.items()
        if key.startswith(PROMPT_REPARAM_PREFIX)
    }
    extra = sorted(
        key
        for key in tensors
        if not key.startswith((HEAD_PREFIX, DEEP_REPARAM_PREFIX, PROMPT_REPARAM_PREFIX))
    )
    if extra:
        raise ValueError(f"{where}: unexpected tensors {extra}")
    check_tensors(where, prompt, head, config, deep_prompts, reparam, prompt_reparam)
    if prompt.shape[1] != embedding_dim:
        raise ValueError(
            f"{where}: {PROMPT_KEY} has dim {prompt.shape[1]} but metadata says embedding_dim {embedding_dim}"
        )
    if deep_dims is not None and deep_prompts is not None:
        layers, hidden = deep_dims
        expected = (layers - 1, config.num_virtual_tokens, hidden)
        if tuple(deep_prompts.shape) != expected:
            raise ValueError(
                f"{where}: {DEEP_KEY} has shape {tuple(deep_prompts.shape)} but metadata says num_layers={layers}, "
                f"hidden_size={hidden}, so {expected}"
            )
    check_task(where, task, num_labels)
    check_labels(where, num_labels, id2label, head)
    headless = task is not None and not task.has_head  # text-to-label: classes generated as words
    if config.train_head and num_labels is not None and not head and not headless:
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
        task=task,
        temperature=temperature,
        deep_prompts=None if deep_prompts is None else deep_prompts.float(),
        deep_reparam={k: v.float() for k, v in reparam.items()},
        prompt_reparam={k: v.float() for k, v in prompt_reparam.items()},
        base_fingerprint=fingerprint,
        path=where,
    )
