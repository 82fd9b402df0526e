"""`PromptSlot`: one named prompt with its own head and task; and building one from a prompt file for a model.

A slot's prompt, head and deep vectors are fp32 master weights, also when the frozen backbone is
held in bf16. The head is a set of copies of the model's head modules (see :mod:`softprompt.models.heads`).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping

import torch
from torch import nn

from softprompt.core.config import SoftPromptConfig
from softprompt.core.task import Task, normalize_id2label
from softprompt.files.checks import base_model_mismatch
from softprompt.files.prompt_file import PromptFile
from softprompt.models import backbone
from softprompt.models.deep import DeepPrompt, model_dims
from softprompt.models.first_token import first_token_model
from softprompt.models.heads import copy_head_modules, head_view
from softprompt.models.residual import ResidualMLP

__all__ = ["PromptSlot", "slot_from_file"]


class PromptSlot(nn.Module):
    """One named prompt: ``prompt`` ``(N, E)``, its head modules, its task, and what describes them.

    A deep prompt (``config.deep``) also has ``deep``, a :class:`~softprompt.models.deep.DeepPrompt` giving
    the ``(L - 1, N, H)`` vectors for the inputs of layers 1..L-1. A prompt trained through a residual MLP
    (``config.residual_hidden``) has ``residual``; :meth:`vectors` gives the ``(N, E)`` prompt a forward uses.

    Args:
        config: The prompt's :class:`SoftPromptConfig`.
        prompt: ``(N, E)`` initial vectors.
        model: The wrapped model: the slot copies its head modules (then overwrites them with
            ``head`` values, if given) and builds a view of it that runs this slot's head.
        head: Head values by parameter name in the model (``"classifier.weight"``); default: the
            model's current head. ``head_given`` records which of the two the slot started from.
        task: What the head predicts (``None`` for a bare encoder).
        id2label: Class names by id.
        temperature: Softmax temperature of calibrated confidences.
        deep: The deep vectors, for ``config.deep``.
        residual: Train ``prompt`` through a residual MLP (``config.residual_hidden``); ``False`` for
            vectors already folded (a prompt file's).

    Raises:
        ValueError: ``deep`` given without ``config.deep``, or the reverse.

    Examples:
        >>> from softprompt import PromptSlot, Task
        >>> slot = PromptSlot(SoftPromptConfig(num_virtual_tokens=2), torch.zeros(2, 32), model, task=Task())
        >>> wrapper.add_slot("zeros", slot)
        >>> sorted(slot.head_params())
        ['classifier.bias', 'classifier.weight']
    """

    def __init__(
        self,
        config: SoftPromptConfig,
        prompt: torch.Tensor,
        model: nn.Module,
        *,
        head: Mapping[str, torch.Tensor] | None = None,
        task: Task | None = None,
        id2label: Mapping[int, str] | None = None,
        temperature: float = 1.0,
        deep: DeepPrompt | None = None,
        residual: bool = False,
    ) -> None:
        super().__init__()
        if config.deep != (deep is not None):
            raise ValueError(
                f"PromptSlot: config has deep={config.deep} but deep vectors were {'given' if deep is not None else 'not given'}"
            )
        self.config = config
        self.deep = deep
        self.task = task
        # fp32 master copies, also when the frozen backbone is held in bf16
        self.prompt = nn.Parameter(prompt.detach().clone().float())  # (N, E)
        self.residual = (
            ResidualMLP(self.prompt.shape[1], config.residual_hidden, seed=config.seed).to(prompt.device)
            if residual and config.residual_hidden is not None
            else None
        )
        self.head_names = backbone.head_parameter_names(model)  # owned head parameters, by model name
        self.heads = nn.ModuleDict(copy_head_modules(model))
        own_params = dict(model.named_parameters(recurse=False))  # head parameters held by the model itself
        self.direct = nn.ParameterDict(
            {n: nn.Parameter(own_params[n].detach().clone()) for n in self.head_names if "." not in n}
        )
        # whether the head values were given (a prompt file's, init_from prompts') or copied from the model
        self.head_given = head is not None
        owned = self.head_params()
        with torch.no_grad():
            for name, param in owned.items():
                value = head[name] if head is not None else param
                param.data = value.detach().to(param.device).float().clone()
                param.requires_grad_(config.train_head)
        self.id2label = normalize_id2label(id2label)
        self.temperature = float(temperature)
        view_config = copy.copy(model.config)  # the slot's labels and loss; the model's config is untouched
        if task is not None:
            view_config.problem_type = task.problem_type
        if self.id2label:
            view_config.id2label = dict(self.id2label)
            view_config.label2id = {v: k for k, v in self.id2label.items()}
        # a plain attribute, not a submodule: the view shares the (registered) backbone
        self.__dict__["view"] = head_view(model, self.heads, dict(self.direct.items()), view_config)
        # the same view with a last layer that computes only what the head reads (None where not exact)
        self.__dict__["first_token_view"] = first_token_model(self.view)

    def vectors(self) -> torch.Tensor:
        """The ``(N, E)`` fp32 prompt a forward uses: ``prompt``, through the residual MLP if it has one.

        Returns:
            ``prompt`` itself (no copy) for a plain prompt; ``prompt + LayerNorm(MLP(prompt))`` otherwise
            (with the graph, so gradients reach the MLP).

        Examples:
            >>> wrapper.slot().vectors() is wrapper.slot().prompt  # a plain prompt
            True
        """
        return self.prompt if self.residual is None else self.residual(self.prompt)

    @property
    def reparameterized(self) -> bool:
        """Whether some vectors come from an MLP (residual, or a deep prompt's) rather than being parameters."""
        return self.residual is not None or (self.deep is not None and self.deep.reparam)

    def fold(self) -> None:
        """Replace every MLP by the plain vectors it gives (what a prompt file holds); a no-op for a plain slot.

        The slot's prompt parameters are new objects afterwards: build a new optimizer to train further.

        Examples:
            >>> config = SoftPromptConfig(num_virtual_tokens=4, residual_hidden=8)
            >>> slot = SoftPromptWrapper(model, config, tokenizer=tokenizer).slot()
            >>> before = slot.vectors().detach().clone()
            >>> slot.fold()
            >>> slot.residual is None and torch.equal(slot.prompt, before)
            True
        """
        if self.residual is not None:
            folded = self.vectors().detach().clone()
            self.residual = None
            self.prompt = nn.Parameter(folded)
        if self.deep is not None and self.deep.reparam:
            self.deep = DeepPrompt(self.deep.folded()).to(self.prompt.device)

    def head_params(self) -> dict[str, torch.Tensor]:
        """The slot's head parameters keyed by their name in the model (``"classifier.weight"``).

        Returns:
            Name to parameter (the slot's own copies, trainable when ``config.train_head``).

        Examples:
            >>> wrapper.slot().head_params()["classifier.weight"].shape
            torch.Size([2, 32])
        """
        out = {}
        for name in self.head_names:
            child, _, rest = name.partition(".")
            out[name] = self.heads[child].get_parameter(rest) if rest else self.direct[name]
        return out


def slot_from_file(pf: PromptFile, model: nn.Module, *, strict_base_model: bool) -> PromptSlot:
    """Validate a prompt file against ``model`` before touching it; build its slot."""
    where = pf.path or "prompt file"
    emb = model.get_input_embeddings().weight
    if pf.embedding_dim != emb.shape[1]:
        raise ValueError(
            f"{where}: prompt has embedding dim {pf.embedding_dim} but {type(model).__name__}'s input embeddings have "
            f"{emb.shape[1]}; it was trained on {pf.base_model or 'another model'!r} ({pf.model_type})"
        )
    lm = backbone.generates_text(model)  # no head to match: the file brings its task and classes
    model_labels = pf.num_labels if lm else backbone.num_labels(model)
    if pf.num_labels != model_labels:
        raise ValueError(
            f"{where}: prompt file has num_labels={pf.num_labels} but the model has {model_labels}; load the model with "
            f"num_labels={pf.num_labels} (e.g. AutoModelForSequenceClassification.from_pretrained(..., num_labels={pf.num_labels}))"
        )
    model_task = pf.task if lm else backbone.sequence_task(model)
    task = pf.task
    if task is None and model_task is not None and pf.num_labels:
        task = model_task  # files written before tasks were recorded: the model's own reading
    if (task is None) != (model_task is None):
        raise ValueError(
            f"{where}: the prompt was trained for {'no sequence task' if task is None else repr(task.type.value)}, but "
            f"{type(model).__name__} {'has no classification head' if model_task is None else 'has one'}; "
            "load the model class the prompt was trained with"
        )
    # token, sequence and QA heads can have the same shapes: the model class decides
    if (
        task is not None
        and model_task is not None
        and task.auto_model_class is not model_task.auto_model_class
    ):
        raise ValueError(
            f"{where}: the prompt was trained for {task.type.value!r}, but {type(model).__name__} has a "
            f"{model_task.type.value} head; load the model with {task.auto_model_class.__name__}"
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
    reason = base_model_mismatch(pf.base_fingerprint, pf.base_model, model)
    message = f"{where}: prompt was {reason}" if reason else ""
    if message:
        if strict_base_model:
            raise ValueError(message)
        warnings.warn(
            message + " (pass strict_base_model=True to make this an error)", UserWarning, stacklevel=3
        )
    return PromptSlot(
        pf.config, pf.prompt.to(emb.device), model, head=pf.head, task=task, id2label=pf.id2label,
        temperature=pf.temperature, deep=deep,
    )  # fmt: skip
