"""What the wrapper needs to know about a Hugging Face model, found generically (no module names).

The backbone is ``model.base_model`` (from ``base_model_prefix``); everything outside it is the
task head. Input embeddings come from ``get_input_embeddings()``.
"""

from __future__ import annotations

import contextlib
import inspect

import torch
from torch import nn

from softprompt.core.constants import DEFAULT_MAX_LENGTH
from softprompt.core.task import Task

# class-name endings of language-model heads (T5ForConditionalGeneration, LlamaForCausalLM, GPT2LMHeadModel)
LM_HEAD_SUFFIXES = ("ForConditionalGeneration", "ForCausalLM", "LMHeadModel")

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "attention_kernels",
    "config_special_ids",
    "cpu_has_fast_bf16",
    "embeddings_owner",
    "first_special_ids",
    "forward_accepts",
    "generates_text",
    "head_parameter_names",
    "max_positions",
    "num_labels",
    "sequence_task",
]


def generates_text(model: nn.Module) -> bool:
    """Whether ``model`` has a language-model head (its class name ends with one of :data:`LM_HEAD_SUFFIXES`).

    Its head (``lm_head``, often tied to the input embeddings) is part of the frozen model, shared by
    every prompt: prompts own no head on it.

    Examples:
        >>> generates_text(T5ForConditionalGeneration(config)), generates_text(BertModel(config))  # doctest: +SKIP
        (True, False)
    """
    return type(model).__name__.endswith(LM_HEAD_SUFFIXES)


def head_parameter_names(model: nn.Module) -> list[str]:
    """Names (as in ``model.named_parameters()``) of the task head: everything outside ``base_model``.

    ``BertForSequenceClassification`` gives ``["classifier.weight", "classifier.bias"]`` (the
    pretrained pooler lives inside the backbone and stays frozen); a bare ``AutoModel`` gives ``[]``,
    and so does a language model (:func:`generates_text`): its LM head stays frozen and shared.
    """
    if generates_text(model):
        return []
    base = getattr(model, "base_model", model)
    if base is model:
        return []
    base_ids = {id(p) for p in base.parameters()}
    return [name for name, p in model.named_parameters() if id(p) not in base_ids]


def num_labels(model: nn.Module) -> int | None:
    """Number of classes of the model's head, or ``None`` for a model without a head."""
    if not head_parameter_names(model):
        return None
    return int(getattr(model.config, "num_labels", 0)) or None


def sequence_task(model: nn.Module) -> Task | None:
    """The :class:`~softprompt.Task` of a classification model's head, ``None`` for other heads.

    A ``*ForTokenClassification`` model is token classification, a ``*ForQuestionAnswering`` model
    question answering; a ``*ForSequenceClassification`` model's task is read from
    ``config.problem_type`` (and ``num_labels``) the way the model itself picks its loss.
    """
    if type(model).__name__.endswith("ForTokenClassification"):
        return Task("token-classification")
    if type(model).__name__.endswith("ForQuestionAnswering"):
        return Task("question-answering")
    if not type(model).__name__.endswith("ForSequenceClassification"):
        return None
    config = model.config
    return Task.from_problem_type(getattr(config, "problem_type", None), getattr(config, "num_labels", None))


def embeddings_owner(model: nn.Module) -> nn.Module | None:
    """The module that holds the input word embeddings as a direct child (e.g. ``BertEmbeddings``)."""
    word = model.get_input_embeddings()
    for module in model.modules():
        if any(child is word for child in module.children()):
            return module
    return None


def max_positions(model: nn.Module) -> int | None:
    """How many tokens the model can take, or ``None`` when it has no absolute position limit.

    RoBERTa-style embeddings reserve ``padding_idx + 1`` positions, so a RoBERTa with
    ``max_position_embeddings=514`` takes 512 tokens.
    """
    limit = getattr(model.config, "max_position_embeddings", None)
    if not isinstance(limit, int) or limit <= 0:
        return None
    owner = embeddings_owner(model)
    padding_idx = getattr(owner, "padding_idx", None)
    if isinstance(padding_idx, int) and hasattr(owner, "position_embeddings"):
        limit -= padding_idx + 1
    return limit


def first_special_ids(model: nn.Module, tokenizer: object | None) -> set[int]:
    """Token ids that can open an input (``[CLS]``, ``<s>``): the prompt goes right after them."""
    ids: set[int] = set()
    for source in (tokenizer, getattr(model, "config", None)):
        for attr in ("cls_token_id", "bos_token_id"):
            value = getattr(source, attr, None) if source is not None else None
            if isinstance(value, int):
                ids.add(value)
    return ids


def config_special_ids(model: nn.Module) -> set[int]:
    """Every special token id the model's config names (pad, cls, sep, bos, eos)."""
    config = getattr(model, "config", None)
    ids = {
        getattr(config, a, None)
        for a in ("pad_token_id", "cls_token_id", "sep_token_id", "bos_token_id", "eos_token_id")
    }
    return {i for i in ids if isinstance(i, int)}


def forward_accepts(model: nn.Module, argument: str) -> bool:
    """Whether ``model.forward`` takes ``argument`` (DistilBERT takes no ``token_type_ids``)."""
    params = inspect.signature(model.forward).parameters
    return argument in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and dtype of the input embedding matrix."""
    weight = model.get_input_embeddings().weight
    return weight.device, weight.dtype


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU runs bf16 matmuls natively (oneDNN's check: AVX-512 BF16 or AMX class).

    On AVX2-only CPUs bf16 matmuls are emulated: we measured 0.8 GFLOP/s against 62 in fp32 on a
    2-core AMD EPYC, so bf16 there is ~75x slower, not faster.
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def attention_kernels(device: torch.device) -> contextlib.AbstractContextManager[None]:
    """Keep ``scaled_dot_product_attention`` off cuDNN's fused attention on CUDA devices.

    cuDNN attention (chosen by PyTorch for bf16/fp16 inputs on recent GPUs) builds an execution
    plan for every new sequence length, and with dynamic padding nearly every batch has a new
    length: on an H100 (torch 2.11) bf16 steps of MiniLM took ~2 s instead of ~16 ms whenever the
    length changed. Flash and memory-efficient attention have no such cost. For fp32 cuDNN is not
    eligible anyway, so this changes nothing there; on CPUs it is a no-op.

    Examples:
        >>> with attention_kernels(torch.device("cpu")):
        ...     pass
    """
    if device.type != "cuda":
        return contextlib.nullcontext()
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # pragma: no cover - torch < 2.3 has no cuDNN attention to avoid
        return contextlib.nullcontext()
    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])
