"""`PromptSlot`: one named prompt with its own head; and building one from a prompt file for a model.

A slot's prompt, head and deep vectors are fp32 master weights, also when the frozen backbone is
held in bf16.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from softprompt import backbone
from softprompt.config import SoftPromptConfig
from softprompt.deep import DeepPrompt, model_dims
from softprompt.prompt_file import PromptFile

__all__ = ["PromptSlot", "param_key", "slot_from_file"]


def param_key(param_name: str) -> str:  # ParameterDict keys may not contain "."
    return param_name.replace(".", "__")


class PromptSlot(nn.Module):
    """One named prompt: ``prompt`` ``(N, E)``, its head parameters, and what describes them.

    A deep prompt (``config.deep``) also has ``deep``, a :class:`~softprompt.deep.DeepPrompt` giving
    the ``(L - 1, N, H)`` vectors for the inputs of layers 1..L-1.
    """

    def __init__(
        self,
        config: SoftPromptConfig,
        prompt: torch.Tensor,
        head: Mapping[str, torch.Tensor],
        *,
        id2label: Mapping[int, str] | None = None,
        temperature: float = 1.0,
        deep: DeepPrompt | None = None,
    ) -> None:
        super().__init__()
        if config.deep != (deep is not None):
            raise ValueError(
                f"PromptSlot: config has deep={config.deep} but deep vectors were {'given' if deep is not None else 'not given'}"
            )
        self.config = config
        self.deep = deep
        # fp32 master copies, also when the frozen backbone is held in bf16
        self.prompt = nn.Parameter(prompt.detach().clone().float())  # (N, E)
        self.head_names = list(head)
        self.head = nn.ParameterDict(
            {
                param_key(k): nn.Parameter(v.detach().clone().float(), requires_grad=config.train_head)
                for k, v in head.items()
            }
        )
        self.id2label = {int(k): str(v) for k, v in (id2label or {}).items()}
        self.temperature = float(temperature)

    def head_params(self) -> dict[str, torch.Tensor]:
        """Head parameters keyed by their name in the model, for ``functional_call``."""
        return {name: self.head[param_key(name)] for name in self.head_names}


def slot_from_file(pf: PromptFile, model: nn.Module, *, strict_base_model: bool) -> PromptSlot:
    """Validate a prompt file against ``model`` before touching it; build its slot."""
    where = pf.path or "prompt file"
    emb = model.get_input_embeddings().weight
    if pf.embedding_dim != emb.shape[1]:
        raise ValueError(
            f"{where}: prompt has embedding dim {pf.embedding_dim} but {type(model).__name__}'s input embeddings have "
            f"{emb.shape[1]}; it was trained on {pf.base_model or 'another model'!r} ({pf.model_type})"
        )
    model_labels = backbone.num_labels(model)
    if pf.num_labels != model_labels:
        raise ValueError(
            f"{where}: prompt file has num_labels={pf.num_labels} but the model has {model_labels}; load the model with "
            f"num_labels={pf.num_labels} (e.g. AutoModelForSequenceClassification.from_pretrained(..., num_labels={pf.num_labels}))"
        )
    deep = None
    if pf.deep_prompts is not None:
        layers, hidden = model_dims(model)
        trained_on = f"it was trained on {pf.base_model or 'another model'!r} ({pf.model_type})"
        if pf.num_layers != layers:
            raise ValueError(
                f"{where}: deep prompt has vectors for {pf.num_layers} layers but {type(model).__name__} has {layers} "
                f"(config.num_hidden_layers); {trained_on}"
            )
        if pf.hidden_size != hidden:
            raise ValueError(
                f"{where}: deep prompt has hidden size {pf.hidden_size} but {type(model).__name__}'s hidden size is "
                f"{hidden}; {trained_on}"
            )
        deep = DeepPrompt(pf.deep_prompts.to(emb.device))  # plain vectors: a file holds them folded
    params = dict(model.named_parameters())
    names = backbone.head_parameter_names(model)
    if sorted(pf.head) != sorted(names):
        raise ValueError(
            f"{where}: head tensors {sorted(pf.head)} do not match the model's head parameters {sorted(names)}"
        )
    for key, tensor in pf.head.items():
        if tuple(tensor.shape) != tuple(params[key].shape):
            raise ValueError(
                f"{where}: head tensor {key!r} has shape {tuple(tensor.shape)}, the model's has {tuple(params[key].shape)}"
            )
    model_name = str(getattr(model.config, "_name_or_path", "") or "")
    if pf.base_model and model_name and Path(pf.base_model).name != Path(model_name).name:
        message = (
            f"{where}: prompt was trained on base model {pf.base_model!r} but this model is {model_name!r}"
        )
        if strict_base_model:
            raise ValueError(message)
        warnings.warn(
            message + " (pass strict_base_model=True to make this an error)", UserWarning, stacklevel=3
        )
    head = {k: v.to(params[k].device) for k, v in pf.head.items()}
    return PromptSlot(
        pf.config, pf.prompt.to(emb.device), head, id2label=pf.id2label, temperature=pf.temperature, deep=deep
    )
