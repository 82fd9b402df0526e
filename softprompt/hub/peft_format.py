"""PEFT's prompt-tuning adapter format as softprompt reads and writes it: tensor keys, task types, header extras.

Shared by :mod:`softprompt.hub.peft_export` and :mod:`softprompt.hub.peft_import`; works on models and
tensors, never on the wrapper.
"""

from __future__ import annotations

from torch import nn

from softprompt.core.config import PromptInit
from softprompt.core.constants import TEMPERATURE_KEY
from softprompt.models import backbone

__all__ = [
    "BARE_TASK",
    "INIT_FROM_PEFT",
    "META_CONFIG",
    "META_ID2LABEL",
    "META_TEMPERATURE",
    "MODEL_PREFIX",
    "PEFT_CLASSIFIER_MODULES",
    "PROMPT_KEY",
    "TASK_BY_CLASS_SUFFIX",
    "peft_task_type",
]

PROMPT_KEY = "prompt_embeddings"
# A prompt-learning PeftModel holds the transformers model as ``base_model`` (no ``.model`` level, unlike LoRA)
MODEL_PREFIX = "base_model."
# PeftModelFor{Sequence,Token}Classification always appends these to modules_to_save
PEFT_CLASSIFIER_MODULES = ("classifier", "score")
TASK_BY_CLASS_SUFFIX = {"ForSequenceClassification": "SEQ_CLS", "ForTokenClassification": "TOKEN_CLS"}
BARE_TASK = "FEATURE_EXTRACTION"
# softprompt extras in the safetensors header; PEFT ignores them, import uses them to restore the slot fully
META_CONFIG, META_ID2LABEL, META_TEMPERATURE = "softprompt_config", "softprompt_id2label", TEMPERATURE_KEY
INIT_FROM_PEFT = {"RANDOM": PromptInit.RANDOM, "SAMPLE_VOCAB": PromptInit.VOCAB, "TEXT": PromptInit.TEXT}


def peft_task_type(model: nn.Module) -> str:
    """The PEFT task type whose PeftModel class runs ``model`` the way the wrapper does.

    Raises:
        ValueError: a language model, or a head PEFT has no task type for.

    Examples:
        >>> peft_task_type(AutoModelForSequenceClassification.from_config(config))  # doctest: +SKIP
        'SEQ_CLS'
    """
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
