"""PEFT interoperability, export side: write a prompt as a PEFT prompt-tuning adapter folder (and the constants both sides share).

PEFT's prompt tuning is softprompt's ``placement="prepend"``: N vectors before [CLS], attention
mask ones, segment 0. Both directions use only ``json`` and ``safetensors``; ``peft`` itself is not needed.

Adapter folder (what ``peft.PeftModel.from_pretrained(model, folder)`` reads)::

    adapter_config.json         peft_type PROMPT_TUNING, task_type, num_virtual_tokens, token_dim,
                                num_transformer_submodules=1, modules_to_save (the head's top-level modules)
    adapter_model.safetensors   prompt_embeddings        float32 (num_virtual_tokens, token_dim)
                                base_model.<state key>   every tensor of each head module PEFT wraps
                                                         (e.g. base_model.classifier.weight)
"""

from __future__ import annotations

import json
import logging
import os
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save
from torch import nn

from softprompt.core.config import Placement
from softprompt.core.constants import PEFT_CONFIG_NAME as CONFIG_NAME
from softprompt.core.constants import PEFT_WEIGHTS_NAME as WEIGHTS_NAME
from softprompt.files.checks import check_values
from softprompt.hub.peft_format import (
    BARE_TASK,
    META_CONFIG,
    META_ID2LABEL,
    META_TEMPERATURE,
    MODEL_PREFIX,
    PEFT_CLASSIFIER_MODULES,
    PROMPT_KEY,
    peft_task_type,
)
from softprompt.models import backbone
from softprompt.models.slot import PromptSlot
from softprompt.utils.atomic import atomic_write_bytes
from softprompt.version import __version__

__all__ = ["adapter_files", "write_adapter"]

logger = logging.getLogger(__name__)


def _wrapped_modules(model: nn.Module, modules_to_save: list[str], task: str) -> list[str]:
    """Names (in ``model``) of the modules PEFT wraps in a ``ModulesToSaveWrapper``: PEFT's own suffix match."""
    targets = list(modules_to_save) + (list(PEFT_CLASSIFIER_MODULES) if task != BARE_TASK else [])
    found = []
    for name, _ in model.named_modules(remove_duplicate=False):
        key = MODEL_PREFIX + name if name else MODEL_PREFIX.rstrip(".")  # its name inside the PeftModel
        if any(key.endswith(t) for t in targets) and name not in found:
            found.append(name)
    return found


def _head_layout(model: nn.Module, task: str) -> tuple[list[str], list[str]]:
    """(modules_to_save, wrapped module names) that let PEFT restore the head exactly, or a ValueError."""
    head_names = backbone.head_parameter_names(model)
    for name in head_names:
        top = name.split(".")[0]
        if "." not in name or not isinstance(getattr(model, top, None), nn.Module):
            raise ValueError(
                f"head parameter {name!r} sits directly on {type(model).__name__}; PEFT restores heads only as whole "
                "modules (modules_to_save), so it cannot hold this head"
            )
    modules_to_save = sorted({name.split(".")[0] for name in head_names})
    wrapped = _wrapped_modules(model, modules_to_save, task)
    head_ids = {id(p) for n, p in model.named_parameters() if n in set(head_names)}
    for name in wrapped:
        if not name:
            raise ValueError(
                f"PEFT would wrap the whole {type(model).__name__} as a module to save; cannot export"
            )
        nested = [other for other in wrapped if other != name and other.startswith(name + ".")]
        if nested:
            raise ValueError(
                f"PEFT would wrap {name!r} and, inside it, {nested}; softprompt cannot export that head"
            )
        ids = {id(p) for p in model.get_submodule(name).parameters()}
        if ids & head_ids and ids - head_ids:
            raise ValueError(
                f"module {name!r} mixes head and backbone parameters; PEFT cannot restore only its head"
            )
    for name in head_names:
        if not any(name.startswith(w + ".") for w in wrapped):
            raise ValueError(
                f"head parameter {name!r} is in no module PEFT wraps (modules_to_save={modules_to_save})"
            )
    return modules_to_save, wrapped


def _model_dims(model: nn.Module) -> dict[str, int | None]:
    config = getattr(model, "config", None)
    layers = getattr(config, "num_hidden_layers", None)
    heads = getattr(config, "num_attention_heads", None)
    return {
        "num_layers": layers if isinstance(layers, int) else None,
        "num_attention_heads": heads if isinstance(heads, int) else None,
    }


def _peft_version() -> str | None:
    try:
        return importlib_metadata.version("peft")
    except importlib_metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------- export


def adapter_files(model: nn.Module, slot: PromptSlot, name: str) -> dict[str, bytes]:
    """The PEFT adapter files of one prompt slot on ``model``, by file name (weights first), built and checked
    in memory; nothing is written here (:func:`softprompt.export_peft_adapter` writes them).

    Args:
        model: The frozen base model the slot runs on.
        slot: The prompt (and trained head) to export.
        name: The prompt's name, for messages.

    Raises:
        ValueError: what PEFT cannot represent exactly: ``placement="after_cls"``, a deep prompt, a model
            that is not a sequence/token classifier or bare encoder, a head PEFT cannot restore, NaN/inf values.

    Examples:
        >>> sorted(adapter_files(wrapper.model, wrapper.slot(), "default"))  # doctest: +SKIP
        ['adapter_config.json', 'adapter_model.safetensors']
    """
    config = slot.config
    if config.placement is not Placement.PREPEND:
        raise ValueError(
            f"prompt {name!r} has placement={config.placement.value!r}, but PEFT prompt tuning only prepends (before "
            "[CLS]); the same vectors there would give other logits. Train with SoftPromptConfig(placement='prepend') to export"
        )
    if getattr(config, "deep", False):
        raise ValueError(
            f"prompt {name!r} is a deep prompt (one per layer); PEFT prompt tuning holds input-layer vectors only, "
            "so it cannot represent it. Export a shallow prompt (deep=False)"
        )
    task = peft_task_type(model)
    modules_to_save, wrapped = _head_layout(model, task) if task != BARE_TASK else ([], [])

    tensors = {PROMPT_KEY: slot.vectors().detach().to("cpu", torch.float32).contiguous()}  # (N, E)
    head = slot.head_params()
    # every state tensor of each wrapped module, or PEFT's loader fails on the missing key
    for module_name in wrapped:
        for key, value in model.get_submodule(module_name).state_dict().items():
            full = f"{module_name}.{key}"
            source = head.get(full, value)  # head: the slot's trained copy; anything else: the frozen model's
            tensors[MODEL_PREFIX + full] = source.detach().to("cpu").clone().contiguous()
    check_values(f"prompt {name!r}", tensors)  # the limits import holds adapters to: what is written loads

    peft_config: dict[str, Any] = {
        "auto_mapping": None,
        "base_model_name_or_path": str(getattr(model.config, "_name_or_path", "") or "") or None,
        "inference_mode": True,
        "modules_to_save": modules_to_save or None,
        **_model_dims(model),
        "num_transformer_submodules": 1,  # encoders: one stack takes the prompt
        "num_virtual_tokens": config.num_virtual_tokens,
        "peft_type": "PROMPT_TUNING",
        # the vectors are trained already: RANDOM keeps PEFT from needing a tokenizer to re-initialise them
        "prompt_tuning_init": "RANDOM",
        "prompt_tuning_init_text": None,
        "revision": None,
        "task_type": task,
        "token_dim": int(slot.prompt.shape[1]),
        "tokenizer_kwargs": None,
        "tokenizer_name_or_path": None,
    }
    version = _peft_version()
    if version is not None:
        peft_config["peft_version"] = version
    header = {
        "format": "pt",  # what PEFT writes; transformers' loaders check it
        "softprompt_version": __version__,
        META_CONFIG: config.to_json(),
        META_ID2LABEL: json.dumps({str(k): v for k, v in sorted(slot.id2label.items())}),
        META_TEMPERATURE: repr(float(slot.temperature)),
    }
    weights = save(tensors, metadata=header)
    # the bytes atomic_write_json writes
    config_text = json.dumps(peft_config, indent=2, sort_keys=True, default=str) + "\n"
    return {WEIGHTS_NAME: weights, CONFIG_NAME: config_text.encode("utf-8")}


# ---------------------------------------------------------------- import


def write_adapter(model: nn.Module, slot: PromptSlot, name: str, folder: str | os.PathLike[str]) -> Path:
    """Write :func:`adapter_files` into ``folder``, each file atomically (everything is checked first).

    Raises:
        ValueError: ``folder`` is a file, or see :func:`adapter_files`.

    Examples:
        >>> write_adapter(wrapper.model, wrapper.slot(), "default", "sentiment-adapter")  # doctest: +SKIP
    """
    files = adapter_files(model, slot, name)
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{str(out)!r} is a file; give a folder for the PEFT adapter")
    for file_name, data in files.items():  # weights first: the config is what makes the folder an adapter
        atomic_write_bytes(out / file_name, data, follow_links=False)
    logger.info("wrote PEFT adapter for prompt %r to %s", name, out)
    return out
