"""Where task heads run: each prompt's own head, through the model's own ``forward``, with nothing patched.

A prompt slot owns copies of the model's head modules (the children outside ``base_model``:
``classifier``, ``pre_classifier``, ``score``...). :func:`head_view` builds, once per slot, a shallow
copy of the task model whose backbone child is the *same* frozen module and whose head children
are the slot's copies, with its own ``config`` (the slot's labels and ``problem_type``). Calling
the view runs the model's own forward (pooling, dropout, loss), so no module names are involved,
no method is ever reassigned (two threads with different prompts see their own heads), and
``torch.compile`` traces plain module calls.

Running a batch of rows through their slots' views is :mod:`softprompt.models.routing`.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

from torch import nn

from softprompt.models.backbone import generates_text

__all__ = [
    "copy_head_modules",
    "head_children",
    "head_view",
    "is_head_parameter",
]


def head_children(model: nn.Module) -> list[str]:
    """Names of ``model``'s direct children that hold head parameters (outside ``base_model``).

    ``BertForSequenceClassification`` gives ``["classifier"]`` (its pooler is inside the backbone),
    ``DistilBertForSequenceClassification`` ``["pre_classifier", "classifier"]``, a bare model ``[]``, and
    a language model ``[]`` (its LM head is frozen and shared by every prompt, never copied).
    """
    base = getattr(model, "base_model", model)
    if generates_text(model):
        return []
    if base is model:
        return []
    base_ids = {id(p) for p in base.parameters()}
    return [
        name
        for name, child in model.named_children()
        if child is not base and any(id(p) not in base_ids for p in child.parameters())
    ]


def is_head_parameter(name: str) -> bool:
    """Whether a wrapper parameter name (``prompts.<slot>.heads.classifier.weight``) is a head's, not a prompt's.

    Examples:
        >>> is_head_parameter("prompts.default.heads.classifier.weight"), is_head_parameter("prompts.default.prompt")
        (True, False)
    """
    parts = name.split(".")
    return len(parts) > 3 and parts[0] == "prompts" and parts[2] in ("heads", "direct")


def copy_head_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Deep copies of the head children; parameters shared with the backbone (tied weights) stay shared."""
    base = model.base_model
    memo: dict[int, Any] = {id(p): p for p in base.parameters()}  # deepcopy keeps these objects
    memo.update({id(b): b for b in base.buffers()})
    return {name: copy.deepcopy(getattr(model, name), memo) for name in head_children(model)}


def head_view(
    model: nn.Module,
    heads: nn.ModuleDict | dict[str, nn.Module],
    direct: dict[str, nn.Parameter],
    config: Any,
) -> nn.Module:
    """A shallow copy of ``model`` that shares its backbone and uses ``heads``, ``direct`` and ``config``.

    ``direct`` replaces head parameters the model holds itself rather than in a child module.

    The view is built once (per prompt slot) and never registered as a submodule, so the
    wrapper's parameters and ``state_dict`` hold the backbone once.
    """
    view = copy.copy(model)  # a new object whose attribute dicts are still the model's...
    # ...so give it its own registries before swapping children in (the model keeps its own head)
    view.__dict__["_modules"] = OrderedDict(model._modules)
    view.__dict__["_parameters"] = OrderedDict(model._parameters)
    view.__dict__["_buffers"] = OrderedDict(model._buffers)
    for name, module in heads.items():
        view._modules[name] = module
    for name, param in direct.items():
        view._parameters[name] = param
    view.__dict__["config"] = config
    if hasattr(model, "num_labels"):  # *ForSequenceClassification keep it as an attribute too
        view.__dict__["num_labels"] = config.num_labels
    return view
