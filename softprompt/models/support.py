"""Which models the wrapper runs correctly, in one place: checked when a model is wrapped, refused otherwise.

A model is an *architecture* (encoder, decoder-only, encoder-decoder) with a *head* (none, sequence
classification, ...). Encoder families outside the verified table are accepted when a probe shows
them bidirectional (they run exactly like the verified ones: the wrapper only splices embeddings);
decoder-only families must be in the table, because their pooling and positions need the handling
of :mod:`softprompt.models.decoder`, verified family by family, and so must language-model heads: a causal LM
of a verified decoder family, a ``*ForConditionalGeneration`` of a verified encoder-decoder family (the
prompt goes into the encoder's input; :mod:`softprompt.models.seq2seq`). Other encoder-decoder classes are
refused. The matrix, with the reasons, is in ``docs/models.md``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from softprompt.models.backbone import forward_accepts
from softprompt.models.modes import eval_mode

__all__ = [
    "DECODER_FAMILIES",
    "DECODER_HEADS",
    "ENCODER_FAMILIES",
    "ENCODER_HEADS",
    "SEQ2SEQ_FAMILIES",
    "ModelSupport",
    "check_supported",
    "head_kind",
    "is_causal",
]

logger = logging.getLogger(__name__)

# model_type values whose every supported head is tested against the bare model (tests/test_model_support.py)
ENCODER_FAMILIES = frozenset(
    {"albert", "bert", "deberta-v2", "distilbert", "electra", "modernbert", "mpnet", "roberta", "xlm-roberta"}
)
DECODER_FAMILIES = frozenset({"gpt2", "llama", "mistral", "qwen2"})
SEQ2SEQ_FAMILIES = frozenset({"bart", "t5"})  # encoder-decoder: *ForConditionalGeneration only

# head kind by the class name's ending; a model that is its own base_model (AutoModel) is "base"
HEAD_SUFFIXES = {
    "ForConditionalGeneration": "seq2seq language modelling",
    "ForSequenceClassification": "sequence classification",
    "ForTokenClassification": "token classification",
    "ForQuestionAnswering": "question answering",
    "ForMaskedLM": "masked language modelling",
    "ForCausalLM": "causal language modelling",
    "LMHeadModel": "causal language modelling",
}
ENCODER_HEADS = ("base", "sequence classification", "token classification", "question answering",
                 "masked language modelling")  # fmt: skip
DECODER_HEADS = ("base", "sequence classification", "token classification", "causal language modelling")
PROBE_TOKENS = 4  # the probe's sequence: position 0 must not see a change at the last one if causal


@dataclass(frozen=True)
class ModelSupport:
    """What :func:`check_supported` found: the model's class, family, architecture and head.

    Attributes:
        model_class: e.g. ``"LlamaForSequenceClassification"``.
        model_type: ``config.model_type`` (``"llama"``), ``""`` if the model has none.
        decoder_only: A causal decoder: the wrapper runs it through :class:`~softprompt.models.decoder.DecoderRows`.
        head: One of :data:`ENCODER_HEADS` / :data:`DECODER_HEADS`, or ``"seq2seq language modelling"``.
        verified: The family is in the verified table (not only probed).
        generation: ``"seq2seq"`` (an encoder-decoder LM), ``"causal"`` (a decoder-only LM) or ``None``
            (no language-model head).
    """

    model_class: str
    model_type: str
    decoder_only: bool
    head: str
    verified: bool
    generation: str | None = None


def head_kind(model: nn.Module) -> str | None:
    """``"base"``, ``"sequence classification"``, ... from the model's class, or ``None`` for an unknown head.

    Examples:
        >>> head_kind(LlamaForSequenceClassification(config))  # doctest: +SKIP
        'sequence classification'
    """
    name = type(model).__name__
    kind = next((kind for suffix, kind in HEAD_SUFFIXES.items() if name.endswith(suffix)), None)
    if kind is None and getattr(model, "base_model", model) is model:  # T5's LM is its own base_model
        return "base"
    return kind


def is_causal(model: nn.Module) -> bool:
    """Whether ``model``'s backbone is causal, found by running it: changing the last of
    :data:`PROBE_TOKENS` embeddings leaves position 0's output unchanged only in a causal model.

    Raises:
        ValueError: the backbone does not run on ``inputs_embeds`` and ``attention_mask``.
    """
    base = getattr(model, "base_model", model)
    weight = model.get_input_embeddings().weight  # (V, E)
    ids = torch.randint(weight.shape[0], (2, PROBE_TOKENS), generator=torch.Generator().manual_seed(0))
    embeds = weight.detach()[ids.to(weight.device)]  # (2, T, E)
    embeds[1, :-1] = embeds[0, :-1]  # the two rows differ at the last position only
    try:
        with eval_mode(base), torch.no_grad():
            out = base(inputs_embeds=embeds, attention_mask=torch.ones_like(ids, device=weight.device))
    except Exception as error:  # any failure means the wrapper cannot run it either
        raise ValueError(
            f"{type(model).__name__} cannot be wrapped: its backbone does not run on inputs_embeds and "
            f"attention_mask ({type(error).__name__}: {error})"
        ) from error
    hidden = out[0]  # (2, T, H) last_hidden_state
    return torch.allclose(hidden[0, 0], hidden[1, 0], rtol=1e-5, atol=1e-6)


def _encoder_decoder_family(config: object) -> bool:
    """Whether ``config``'s class is encoder-decoder by default (``T5ForTokenClassification`` runs T5's
    encoder alone and turns the flag off on its own config)."""
    try:
        return bool(getattr(type(config)(), "is_encoder_decoder", False))
    except Exception:  # a config class that needs arguments: judge by the instance alone
        return False


def check_supported(model: nn.Module) -> ModelSupport:
    """Refuse, with the model class and what is missing, any model the wrapper would run wrongly.

    Raises:
        ValueError: an encoder-decoder model other than a verified family's ``*ForConditionalGeneration``,
            a language-model head on a family other than a verified decoder-only one, another unsupported
            head, an unverified decoder-only family, a decoder classifier without ``pad_token_id``, or a
            backbone that does not run on ``inputs_embeds``.

    Examples:
        >>> check_supported(LlamaForSequenceClassification(LlamaConfig(pad_token_id=0)))  # doctest: +SKIP
        ModelSupport(model_class='LlamaForSequenceClassification', model_type='llama', decoder_only=True, ...)
    """
    name = type(model).__name__
    config = getattr(model, "config", None)
    model_type = str(getattr(config, "model_type", "") or "")
    known = model_type in ENCODER_FAMILIES or model_type in DECODER_FAMILIES
    head = head_kind(model)
    if getattr(config, "is_encoder_decoder", False) or (not known and _encoder_decoder_family(config)):
        return _check_seq2seq(model, name, model_type, head)
    if head == "causal language modelling" and model_type not in DECODER_FAMILIES:
        raise ValueError(
            f"{name} ({model_type!r}) is a causal language model of a family whose generation softprompt has not "
            f"verified: not supported (verified: {', '.join(sorted(DECODER_FAMILIES))}); its positions and padding "
            "need checking first"
        )
    if head is None or head == "seq2seq language modelling":  # the latter outside an encoder-decoder model
        raise ValueError(
            f"{name}: this head is not supported; softprompt runs AutoModel, *ForSequenceClassification and "
            "*ForTokenClassification models (on encoders also *ForQuestionAnswering and *ForMaskedLM; on decoders "
            "*ForCausalLM; on T5/BART *ForConditionalGeneration)"
        )
    if not forward_accepts(model, "inputs_embeds"):
        raise ValueError(f"{name}.forward takes no inputs_embeds, which prompt tuning needs")
    decoder_only = model_type in DECODER_FAMILIES if known else is_causal(model)
    if decoder_only and not known:
        raise ValueError(
            f"{name} ({model_type!r}) is a decoder-only model of a family softprompt has not verified (verified: "
            f"{', '.join(sorted(DECODER_FAMILIES))}): its last-token pooling and positions need checking first"
        )
    if not known:
        logger.info(
            "%s (%r): not a verified family; runs as a bidirectional encoder (probed)", name, model_type
        )
    if decoder_only and head not in DECODER_HEADS:
        raise ValueError(
            f"{name}: {head} on decoder-only models is not supported yet (answer start/end positions are not "
            "mapped into the left-aligned rows the model runs on); use an encoder for question answering"
        )
    if decoder_only and head == "sequence classification" and getattr(config, "pad_token_id", None) is None:
        raise ValueError(
            f"{name}'s config has no pad_token_id, and the model refuses batches of more than one text without one: "
            "set model.config.pad_token_id before wrapping (e.g. to tokenizer.pad_token_id, or eos_token_id); "
            "softprompt finds each row's last real token from the attention mask, so any id will do"
        )
    generation = "causal" if head == "causal language modelling" else None
    return ModelSupport(name, model_type, decoder_only, head, verified=known, generation=generation)


def _check_seq2seq(model: nn.Module, name: str, model_type: str, head: str | None) -> ModelSupport:
    """An encoder-decoder model: a verified family's ``*ForConditionalGeneration`` runs, the rest is refused."""
    config = getattr(model, "config", None)
    if head != "seq2seq language modelling" or not getattr(config, "is_encoder_decoder", False):
        raise ValueError(
            f"{name} is (part of) an encoder-decoder model ({model_type!r}): only its *ForConditionalGeneration "
            "class is supported (the prompt in the encoder's input, labels as target text, wrapper.generate); "
            f"{head or 'this head'} is not supported. For classification, load it with AutoModelForSeq2SeqLM and "
            "train a text-to-label prompt, or use an encoder"
        )
    if model_type not in SEQ2SEQ_FAMILIES:
        raise ValueError(
            f"{name} ({model_type!r}) is an encoder-decoder family softprompt has not verified: not supported "
            f"(verified: {', '.join(sorted(SEQ2SEQ_FAMILIES))}); its encoder's positions and padding need checking first"
        )
    if not forward_accepts(model, "inputs_embeds"):
        raise ValueError(f"{name}.forward takes no inputs_embeds, which prompt tuning needs")
    return ModelSupport(name, model_type, False, head, verified=True, generation="seq2seq")
