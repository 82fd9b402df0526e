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
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save
from torch import nn

from softprompt import backbone
from softprompt.atomic import atomic_write_bytes
from softprompt.config import Placement, PromptInit
from softprompt.slot import PromptSlot
from softprompt.version import __version__
from softprompt.wrapper import SoftPromptWrapper

__all__ = ["adapter_files", "export_peft_adapter"]

logger = logging.getLogger(__name__)

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
PICKLE_WEIGHTS_NAME = "adapter_model.bin"  # PEFT's legacy torch.save file: never read (unpickling runs code)
PROMPT_KEY = "prompt_embeddings"
# A prompt-learning PeftModel holds the transformers model as ``base_model`` (no ``.model`` level, unlike LoRA)
MODEL_PREFIX = "base_model."
# PeftModelFor{Sequence,Token}Classification always appends these to modules_to_save
PEFT_CLASSIFIER_MODULES = ("classifier", "score")
TASK_BY_CLASS_SUFFIX = {"ForSequenceClassification": "SEQ_CLS", "ForTokenClassification": "TOKEN_CLS"}
BARE_TASK = "FEATURE_EXTRACTION"
# softprompt extras in the safetensors header; PEFT ignores them, import uses them to restore the slot fully
META_CONFIG, META_ID2LABEL, META_TEMPERATURE = (
    "softprompt_config",
    "softprompt_id2label",
    "softprompt_temperature",
)
_INIT_FROM_PEFT = {"RANDOM": PromptInit.RANDOM, "SAMPLE_VOCAB": PromptInit.VOCAB, "TEXT": PromptInit.TEXT}


# ---------------------------------------------------------------- what PEFT does with a model


def _task_type(model: nn.Module) -> str:
    """The PEFT task type whose PeftModel class runs ``model`` the way the wrapper does."""
    if backbone.generates_text(model):  # PEFT LM prompt tuning is not checked against ours
        raise ValueError(
            f"PEFT interop does not cover language models yet ({type(model).__name__}): its CAUSAL_LM and SEQ_2_SEQ_LM "
            "prompt tuning has not been verified to run the same as softprompt's; use the prompt.safetensors file"
        )
    if not backbone.head_parameter_names(model):
        return BARE_TASK
    cls_name = type(model).__name__
    for suffix, task in TASK_BY_CLASS_SUFFIX.items():
        if cls_name.endswith(suffix):
            return task
    raise ValueError(
        f"PEFT interop supports sequence classification, token classification and bare encoders (AutoModel), "
        f"not {cls_name}: its head has no PEFT task type softprompt can map"
    )


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


def _check_finite(where: str, tensors: Mapping[str, torch.Tensor]) -> None:
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            bad = int((~torch.isfinite(tensor)).sum())
            raise ValueError(f"{where}: tensor {key!r} has {bad} NaN/inf values; refusing to use it")


# ---------------------------------------------------------------- export


def export_peft_adapter(
    wrapper: SoftPromptWrapper, folder: str | os.PathLike[str], name: str | None = None
) -> Path:
    """Write one prompt (default: the active one) and its head as a PEFT prompt-tuning adapter folder.

    ``peft.PeftModel.from_pretrained(model, folder)`` then gives the same logits as ``wrapper`` on
    inputs whose first token has segment 0 (PEFT gives the virtual tokens segment 0; the wrapper
    copies the first token's, which a tokenizer makes 0). Task type: ``SEQ_CLS``, ``TOKEN_CLS`` or
    ``FEATURE_EXTRACTION`` from the model class. The head is stored the way PEFT stores
    ``modules_to_save``. Everything is checked before anything is written; each file is written atomically.

    Args:
        wrapper: The :class:`SoftPromptWrapper` holding the prompt.
        folder: Adapter folder to create (or update).
        name: Prompt slot; default the active prompt.

    Returns:
        The folder.

    Raises:
        KeyError: no prompt named ``name``.
        ValueError: what PEFT cannot represent exactly: ``placement="after_cls"``, a deep prompt, a model
            that is not a sequence/token classifier or bare encoder, a head PEFT cannot restore, NaN/inf values.

    Example:
        >>> export_peft_adapter(wrapper, "sentiment-adapter")  # doctest: +SKIP
        >>> peft_model = PeftModel.from_pretrained(fresh_model, "sentiment-adapter")  # doctest: +SKIP
    """
    name = wrapper.active_prompt if name is None else name
    files = adapter_files(wrapper, name)
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{str(out)!r} is a file; give a folder for the PEFT adapter")
    for file_name, data in files.items():  # weights first: the config is what makes the folder an adapter
        atomic_write_bytes(out / file_name, data)
    logger.info("wrote PEFT adapter for prompt %r to %s", name, out)
    return out


def adapter_files(wrapper: SoftPromptWrapper, name: str | None = None) -> dict[str, bytes]:
    """The PEFT adapter files of one prompt, by file name (weights first), built and checked in memory.

    What :func:`export_peft_adapter` writes; nothing is written here.

    Raises:
        KeyError, ValueError: as :func:`export_peft_adapter`.

    Example:
        >>> sorted(adapter_files(wrapper))  # doctest: +SKIP
        ['adapter_config.json', 'adapter_model.safetensors']
    """
    name = wrapper.active_prompt if name is None else name
    if name not in wrapper.prompts:
        raise KeyError(f"no prompt named {name!r}; loaded prompts: {list(wrapper.prompts)}")
    slot: PromptSlot = wrapper.prompts[name]
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
    model = wrapper.model
    task = _task_type(model)
    modules_to_save, wrapped = _head_layout(model, task) if task != BARE_TASK else ([], [])

    tensors = {PROMPT_KEY: slot.prompt.detach().to("cpu", torch.float32).contiguous()}  # (N, E)
    head = slot.head_params()
    # every state tensor of each wrapped module, or PEFT's loader fails on the missing key
    for module_name in wrapped:
        for key, value in model.get_submodule(module_name).state_dict().items():
            full = f"{module_name}.{key}"
            source = head.get(full, value)  # head: the slot's trained copy; anything else: the frozen model's
            tensors[MODEL_PREFIX + full] = source.detach().to("cpu").clone().contiguous()
    _check_finite(f"prompt {name!r}", tensors)

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
