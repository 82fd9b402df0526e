"""PEFT interoperability: write a prompt as a PEFT prompt-tuning adapter folder, and read one back.

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
import math
import os
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from softprompt import backbone
from softprompt.atomic import atomic_write_bytes, atomic_write_json
from softprompt.config import Placement, PromptInit, SoftPromptConfig
from softprompt.slot import PromptSlot
from softprompt.version import __version__
from softprompt.wrapper import DEFAULT_NAME, SoftPromptWrapper

__all__ = ["export_peft_adapter", "import_peft_adapter", "load_peft_adapter"]

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
        >>> export_peft_adapter(wrapper, "imdb-adapter")  # doctest: +SKIP
        >>> peft_model = PeftModel.from_pretrained(fresh_model, "imdb-adapter")  # doctest: +SKIP
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
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{str(out)!r} is a file; give a folder for the PEFT adapter")
    # weights first: the config is what makes the folder an adapter
    atomic_write_bytes(out / WEIGHTS_NAME, save(tensors, metadata=header))
    atomic_write_json(out / CONFIG_NAME, peft_config)
    logger.info("wrote PEFT %s adapter for prompt %r to %s", task, name, out)
    return out


# ---------------------------------------------------------------- import


def _read_adapter(
    folder: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, str]]:
    """(adapter_config, tensors, safetensors header) of a PEFT prompt-tuning folder, checked without a model."""
    where = str(folder)
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"PEFT adapter folder {where!r} does not exist")
    config_path = root / CONFIG_NAME
    if not config_path.is_file():
        raise FileNotFoundError(f"{where}: no {CONFIG_NAME}; not a PEFT adapter folder")
    try:
        peft_config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{where}: unreadable {CONFIG_NAME} ({exc})") from exc
    if not isinstance(peft_config, dict):
        raise ValueError(f"{where}: {CONFIG_NAME} is not a JSON object")
    peft_type = peft_config.get("peft_type")
    if peft_type != "PROMPT_TUNING":
        raise ValueError(
            f"{where}: adapter has peft_type={peft_type!r}; softprompt reads only PROMPT_TUNING adapters (input-layer "
            "soft prompts). LoRA, prefix tuning, P-tuning and the like change the model in ways a soft prompt cannot hold"
        )
    submodules = peft_config.get("num_transformer_submodules") or 1
    if submodules != 1:
        raise ValueError(
            f"{where}: adapter has num_transformer_submodules={submodules} (an encoder-decoder prompt); softprompt "
            "wraps encoders, which take one prompt (num_transformer_submodules=1)"
        )
    n = peft_config.get("num_virtual_tokens")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{where}: num_virtual_tokens must be a positive int, got {n!r}")

    weights = root / WEIGHTS_NAME
    if not weights.is_file():
        if (root / PICKLE_WEIGHTS_NAME).is_file():
            raise ValueError(
                f"{where}: only {PICKLE_WEIGHTS_NAME} (a pickle) is there; softprompt never unpickles. Re-save it with "
                f"PEFT as safetensors (peft_model.save_pretrained(folder), the default) to get {WEIGHTS_NAME}"
            )
        raise FileNotFoundError(f"{where}: no {WEIGHTS_NAME}")
    try:
        with safe_open(str(weights), framework="pt") as fh:
            header = dict(fh.metadata() or {})
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{where}: {WEIGHTS_NAME} is not a readable .safetensors file ({exc})") from exc
    if PROMPT_KEY not in tensors:
        raise ValueError(f"{where}: {WEIGHTS_NAME} has no {PROMPT_KEY!r} tensor (found {sorted(tensors)})")
    prompt = tensors[PROMPT_KEY]
    token_dim = peft_config.get("token_dim")
    if prompt.dim() != 2 or prompt.shape[0] != n or (token_dim is not None and prompt.shape[1] != token_dim):
        raise ValueError(
            f"{where}: {PROMPT_KEY} has shape {tuple(prompt.shape)} but the config says ({n}, {token_dim}) "
            "(num_virtual_tokens, token_dim)"
        )
    other = sorted(k for k in tensors if k != PROMPT_KEY and not k.startswith(MODEL_PREFIX))
    if other:
        raise ValueError(f"{where}: unexpected tensors {other} in a prompt-tuning adapter")
    _check_finite(where, tensors)
    return peft_config, tensors, header


def _slot_config(peft_config: dict[str, Any], header: dict[str, str], has_head: bool) -> SoftPromptConfig:
    n = peft_config["num_virtual_tokens"]
    if META_CONFIG in header:  # written by export_peft_adapter: the prompt's own config
        try:
            config = SoftPromptConfig.from_json(header[META_CONFIG])
        except ValueError as exc:
            logger.warning("ignoring unreadable softprompt config in the adapter (%s)", exc)
        else:
            if config.num_virtual_tokens == n and config.placement is Placement.PREPEND:
                return config
            logger.warning("ignoring softprompt config in the adapter: it disagrees with adapter_config.json")
    init = _INIT_FROM_PEFT.get(str(peft_config.get("prompt_tuning_init")), PromptInit.RANDOM)
    text = peft_config.get("prompt_tuning_init_text")
    if init is PromptInit.TEXT and not (isinstance(text, str) and text.strip()):
        init, text = PromptInit.RANDOM, None
    return SoftPromptConfig(
        num_virtual_tokens=n,
        init=init,
        init_text=text if init is PromptInit.TEXT else None,
        placement=Placement.PREPEND,
        train_head=has_head,
    )


def _slot_from_adapter(model: nn.Module, folder: str | os.PathLike[str]) -> PromptSlot:
    """Read ``folder`` and check it against ``model`` before anything is changed; build its slot."""
    where = str(folder)
    peft_config, tensors, header = _read_adapter(folder)
    if not isinstance(model, nn.Module) or not hasattr(model, "get_input_embeddings"):
        raise TypeError(f"import_peft_adapter needs a transformers model, got {type(model).__name__}")
    emb = model.get_input_embeddings().weight  # (V, E)
    prompt = tensors.pop(PROMPT_KEY)
    if prompt.shape[1] != emb.shape[1]:
        raise ValueError(
            f"{where}: adapter has token_dim {prompt.shape[1]} but {type(model).__name__}'s input embeddings have "
            f"{emb.shape[1]}; it was made for {peft_config.get('base_model_name_or_path') or 'another model'!r}"
        )
    task = _task_type(model)
    adapter_task = peft_config.get("task_type")
    if adapter_task != task:
        raise ValueError(
            f"{where}: adapter has task_type={adapter_task!r} but {type(model).__name__} needs {task!r}; load the model "
            "class the adapter was trained with (SEQ_CLS: AutoModelForSequenceClassification, TOKEN_CLS: "
            "AutoModelForTokenClassification, FEATURE_EXTRACTION: AutoModel)"
        )

    head_names = backbone.head_parameter_names(model)
    state = model.state_dict()
    head: dict[str, torch.Tensor] = {}
    for key, tensor in tensors.items():
        param = key[len(MODEL_PREFIX) :]
        if param not in state:
            raise ValueError(f"{where}: adapter tensor {key!r} names no parameter of {type(model).__name__}")
        if tuple(tensor.shape) != tuple(state[param].shape):
            labels_dim = param in head_names and state[param].shape[:1] == (backbone.num_labels(model),)
            hint = (
                f"; load the model with num_labels={tensor.shape[0]}" if labels_dim and tensor.dim() else ""
            )
            raise ValueError(
                f"{where}: adapter tensor {key!r} has shape {tuple(tensor.shape)}, "
                f"the model's has {tuple(state[param].shape)}{hint}"
            )
        if param in head_names:
            head[param] = tensor.float()
        elif not torch.equal(tensor.to(state[param].dtype), state[param].cpu()):
            raise ValueError(
                f"{where}: adapter changes backbone tensor {param!r}; softprompt keeps the backbone frozen, so it "
                "cannot hold this adapter exactly"
            )
    params = dict(model.named_parameters())
    missing = [n for n in head_names if n not in head]
    if missing:  # PEFT too would keep the model's own values for head modules it does not wrap
        logger.warning("%s: adapter has no %s; using the model's own values", where, missing)
        head.update({n: params[n].detach().float() for n in missing})
    head = {n: head[n].to(params[n].device) for n in head_names}  # model order

    id2label = (
        {int(k): str(v) for k, v in (getattr(model.config, "id2label", None) or {}).items()}
        if head_names
        else {}
    )
    temperature = 1.0
    try:
        if META_ID2LABEL in header:
            id2label = {int(k): str(v) for k, v in json.loads(header[META_ID2LABEL]).items()} or id2label
        if META_TEMPERATURE in header:
            temperature = float(header[META_TEMPERATURE])
    except (ValueError, TypeError, AttributeError) as exc:
        logger.warning("%s: ignoring unreadable softprompt metadata (%s)", where, exc)
    if not math.isfinite(temperature) or temperature <= 0:
        temperature = 1.0
    config = _slot_config(peft_config, header, has_head=bool(head_names))
    return PromptSlot(
        config, prompt.float().to(emb.device), model, head=head, task=backbone.sequence_task(model),
        id2label=id2label, temperature=temperature,
    )  # fmt: skip


def import_peft_adapter(
    model: nn.Module,
    folder: str | os.PathLike[str],
    *,
    tokenizer: Any | None = None,
    name: str = DEFAULT_NAME,
) -> SoftPromptWrapper:
    """Wrap ``model`` with the prompt (and classifier head, if saved) of a PEFT prompt-tuning adapter.

    The wrapper's logits equal ``peft.PeftModel.from_pretrained(model, folder)``'s on inputs whose
    first token has segment 0. Only ``adapter_model.safetensors`` is read, never a pickle.

    Args:
        model: The base model the adapter was trained on (a fresh copy: the wrapper freezes it).
        folder: The adapter folder (``adapter_config.json`` + ``adapter_model.safetensors``).
        tokenizer: The model's tokenizer, for :meth:`SoftPromptWrapper.tokenize`.
        name: Name of the prompt slot.

    Returns:
        A :class:`SoftPromptWrapper` with ``placement="prepend"``.

    Raises:
        FileNotFoundError: no folder, no ``adapter_config.json`` or no ``adapter_model.safetensors``.
        ValueError: not a prompt-tuning adapter (LoRA, prefix tuning, ...), ``num_transformer_submodules``
            other than 1, ``token_dim`` or head shapes unlike the model's, a task type that does not
            fit the model, only a pickled ``adapter_model.bin``, tensors that change the backbone, NaN/inf.

    Example:
        >>> wrapper = import_peft_adapter(model, "peft-imdb-adapter", tokenizer=tok)  # doctest: +SKIP
        >>> wrapper.save_prompt("imdb.safetensors")  # doctest: +SKIP
    """
    slot = _slot_from_adapter(model, folder)
    return SoftPromptWrapper(model, slot.config, tokenizer=tokenizer, name=name, _slot=slot)


def load_peft_adapter(
    wrapper: SoftPromptWrapper,
    folder: str | os.PathLike[str],
    name: str | None = None,
    *,
    activate: bool = False,
    replace: bool = False,
) -> str:
    """Add a PEFT prompt-tuning adapter to ``wrapper`` as a named slot (like :meth:`~SoftPromptWrapper.load_prompt`).

    Args:
        wrapper: The wrapper whose model the adapter was trained on.
        folder: The adapter folder.
        name: Slot name; defaults to the folder's name.
        activate: Make it the active prompt.
        replace: Allow overwriting an existing slot of that name.

    Returns:
        The slot name.

    Raises:
        FileNotFoundError, ValueError: see :func:`import_peft_adapter`; also a name already taken.

    Example:
        >>> load_peft_adapter(wrapper, "peft-sst2-adapter", activate=True)  # doctest: +SKIP
        'peft-sst2-adapter'
    """
    name = Path(folder).name if name is None else name
    if name in wrapper.prompts and not replace:
        raise ValueError(f"a prompt named {name!r} is loaded already; pass replace=True or another name")
    wrapper._add_slot(name, _slot_from_adapter(wrapper.model, folder))
    if activate:
        wrapper.set_active_prompt(name)
    return name
