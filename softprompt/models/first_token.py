"""Compute only what a [CLS] head reads: the last encoder layer for position 0 alone.

A sequence-classification head of the BERT family reads one position of the last layer: BERT's
pooler and the RoBERTa/ELECTRA classification heads take ``hidden[:, 0]``. Every other position of
the last layer is computed and thrown away, and position-wise work dominates a layer: the attention
output projection and the feed-forward network are 9 of its 12 ``H x H`` products. So, in the last
layer only, :class:`FirstTokenLayer` projects the query of position 0 alone, attends over all keys
and values (those still depend on every position) and runs the output projection and the
feed-forward network for that one position. For a 6-layer model that is about 14 % less work for
the same logits, up to float rounding (tests compare with the bare model to 1e-5).

It is used only where it is known to be exact (:func:`first_token_model` returns ``None``
otherwise, and the model runs whole): a sequence-classification class of the families in
:data:`FAMILIES`, an encoder (no cross-attention, no cache), eager or SDPA attention, a backbone in
eval mode (no dropout, so no random stream changes), and no hidden states or attentions asked for
(those would lose the last layer's other positions). Deep prompts also run the whole model: their
hooks sit on the layers themselves.

Examples:
    >>> trimmed = first_token_model(model)  # doctest: +SKIP
    >>> torch.allclose(trimmed(**batch).logits, model(**batch).logits, atol=1e-5)  # doctest: +SKIP
    True
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

__all__ = ["FAMILIES", "FirstTokenLayer", "first_token_model", "wants_every_position"]

# model_type -> the sequence-classification class whose head reads position 0 of the last layer
FAMILIES = {
    "bert": "BertForSequenceClassification",
    "camembert": "CamembertForSequenceClassification",
    "electra": "ElectraForSequenceClassification",
    "roberta": "RobertaForSequenceClassification",
    "xlm-roberta": "XLMRobertaForSequenceClassification",
}
ATTENTION = ("eager", "sdpa")  # attention implementations whose masks and maths are handled here


class FirstTokenLayer(nn.Module):
    """A BERT-style encoder layer that returns position 0 only: ``(B, T, H) -> (B, 1, H)``.

    Shares (does not copy) the wrapped layer's modules, so casts, int8 conversion and frozen weights
    of the layer apply here as well.
    """

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> torch.Tensor:
        """The wrapped layer's output at position 0 only (the others are not computed), ``(B, 1, H)``."""
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        attention = self.layer.attention
        sa = attention.self
        batch, length, _ = hidden_states.shape
        d = sa.attention_head_size
        first = hidden_states[:, :1]  # (B, 1, H)
        query = sa.query(first).view(batch, 1, -1, d).transpose(1, 2)  # (B, heads, 1, d)
        key = sa.key(hidden_states).view(batch, length, -1, d).transpose(1, 2)  # (B, heads, T, d)
        value = sa.value(hidden_states).view(batch, length, -1, d).transpose(1, 2)
        if attention_mask is not None and attention_mask.dim() == 4 and attention_mask.shape[2] > 1:
            attention_mask = attention_mask[:, :, :1]  # (B, 1, T, T) -> (B, 1, 1, T): position 0's row
        implementation = sa.config._attn_implementation
        if implementation == "eager":
            context = _eager_attention(query, key, value, attention_mask, sa.scaling)
        else:
            context, _ = ALL_ATTENTION_FUNCTIONS[implementation](
                sa, query, key, value, attention_mask, dropout=0.0, scaling=sa.scaling
            )  # (B, 1, heads, d)
        context = context.reshape(batch, 1, -1)  # (B, 1, H)
        attended = attention.output(context, first)  # output projection, residual, LayerNorm
        return self.layer.feed_forward_chunk(attended)  # (B, 1, H)


def _eager_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None, scaling: float
) -> torch.Tensor:
    """The eager implementation's arithmetic: ``(B, heads, 1, d)`` queries -> ``(B, 1, heads, d)``."""
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling  # (B, heads, 1, T)
    if mask is not None:
        scores = scores + mask  # additive float mask
    weights = nn.functional.softmax(scores, dim=-1)
    return torch.matmul(weights, value).transpose(1, 2).contiguous()


def wants_every_position(model: nn.Module, kwargs: dict[str, Any]) -> bool:
    """Whether this call asks for per-layer outputs (hidden states, attentions) the trimmed layer would cut."""
    config = model.config
    return any(
        kwargs.get(name) or (kwargs.get(name) is None and getattr(config, name, False))
        for name in ("output_hidden_states", "output_attentions")
    )


def first_token_model(model: nn.Module) -> nn.Module | None:
    """A shallow copy of ``model`` whose last encoder layer computes position 0 only, or ``None``.

    ``None`` wherever the trim is not known to give the same logits (see the module docstring). The
    copy shares every parameter and module with ``model`` but the encoder's layer list.
    """
    config = getattr(model, "config", None)
    if config is None or FAMILIES.get(getattr(config, "model_type", "")) != type(model).__name__:
        return None
    if config.is_decoder or getattr(config, "add_cross_attention", False):
        return None
    if getattr(config, "_attn_implementation", None) not in ATTENTION:
        return None
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return None  # relative positions would enter the attention scores (older transformers)
    base = model.base_model
    prefix = model.base_model_prefix
    encoder = getattr(base, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if getattr(model, prefix, None) is not base or not isinstance(layers, nn.ModuleList) or not layers:
        return None
    last = layers[-1]
    if not _bert_style(last):
        return None
    trimmed_layers = nn.ModuleList([*layers[:-1], FirstTokenLayer(last)])
    return _with_child(
        model, prefix, _with_child(base, "encoder", _with_child(encoder, "layer", trimmed_layers))
    )


def _bert_style(layer: nn.Module) -> bool:
    attention = getattr(layer, "attention", None)
    sa = getattr(attention, "self", None)
    return (
        all(isinstance(getattr(sa, name, None), nn.Linear) for name in ("query", "key", "value"))
        and hasattr(sa, "attention_head_size")
        and hasattr(sa, "scaling")
        and hasattr(attention, "output")
        and callable(getattr(layer, "feed_forward_chunk", None))
        and not getattr(layer, "add_cross_attention", False)
        and not getattr(attention, "is_cross_attention", False)
    )


def _with_child(module: nn.Module, name: str, child: nn.Module) -> nn.Module:
    """A shallow copy of ``module`` with its child ``name`` replaced (``module`` itself untouched)."""
    clone = copy.copy(module)
    clone.__dict__["_modules"] = OrderedDict(module._modules)
    clone._modules[name] = child
    return clone
