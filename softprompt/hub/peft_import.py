"""PEFT interoperability, import side: read a PEFT prompt-tuning adapter folder back into a prompt slot.

Never unpickles: only ``adapter_config.json`` and ``adapter_model.safetensors`` are read.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from softprompt.core.config import Placement, PromptInit, SoftPromptConfig
from softprompt.core.constants import PEFT_CONFIG_NAME as CONFIG_NAME
from softprompt.core.constants import PEFT_PICKLE_WEIGHTS_NAME as PICKLE_WEIGHTS_NAME
from softprompt.core.constants import PEFT_WEIGHTS_NAME as WEIGHTS_NAME
from softprompt.core.task import normalize_id2label
from softprompt.files.checks import check_temperature, check_values
from softprompt.hub.peft_format import (
    INIT_FROM_PEFT,
    META_CONFIG,
    META_ID2LABEL,
    META_TEMPERATURE,
    MODEL_PREFIX,
    PROMPT_KEY,
    peft_task_type,
)
from softprompt.models import backbone
from softprompt.models.slot import PromptSlot
from softprompt.utils.inputs import parse_json, read_bounded_text

__all__ = ["slot_from_adapter"]

logger = logging.getLogger(__name__)


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
    try:  # the input policy: bounded size and depth
        peft_config = parse_json(read_bounded_text(config_path, CONFIG_NAME), f"{where}: {CONFIG_NAME}")
    except OSError as exc:
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
    check_values(where, tensors)  # the prompt file's limits: float, finite, within ±MAX_ABS_VALUE
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
    init = INIT_FROM_PEFT.get(str(peft_config.get("prompt_tuning_init")), PromptInit.RANDOM)
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


def slot_from_adapter(model: nn.Module, folder: str | os.PathLike[str]) -> PromptSlot:
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
    task = peft_task_type(model)
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

    id2label = normalize_id2label(getattr(model.config, "id2label", None)) if head_names else {}
    temperature = 1.0
    # softprompt's own extras in the header: checked as a prompt file's are, refused when bad (never guessed at)
    if META_ID2LABEL in header:
        names = parse_json(header[META_ID2LABEL], f"{where}: {META_ID2LABEL}")
        id2label = normalize_id2label(names, f"{where}: {META_ID2LABEL}") or id2label
    if META_TEMPERATURE in header:
        temperature = check_temperature(where, header[META_TEMPERATURE])
    config = _slot_config(peft_config, header, has_head=bool(head_names))
    return PromptSlot(
        config, prompt.float().to(emb.device), model, head=head, task=backbone.sequence_task(model),
        id2label=id2label, temperature=temperature,
    )  # fmt: skip
