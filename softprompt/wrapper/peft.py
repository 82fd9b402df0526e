"""PEFT interoperability: a prompt as a PEFT prompt-tuning adapter folder and back (exact logits both ways).

PEFT's prompt tuning is softprompt's ``placement="prepend"``. The adapter format lives in
:mod:`softprompt.hub` (:mod:`~softprompt.hub.peft_export`, :mod:`~softprompt.hub.peft_import`), which works
on prompt slots; these are the public functions that take or make a :class:`~softprompt.SoftPromptWrapper`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import nn

from softprompt.hub.peft_export import write_adapter
from softprompt.hub.peft_import import slot_from_adapter
from softprompt.wrapper.model import DEFAULT_NAME, SoftPromptWrapper

__all__ = ["export_peft_adapter", "import_peft_adapter", "load_peft_adapter"]


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

    Examples:
        >>> from peft import PeftModel
        >>> from transformers import AutoModelForSequenceClassification
        >>> base = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
        >>> config = SoftPromptConfig(num_virtual_tokens=4, placement="prepend")  # PEFT's layout
        >>> folder = export_peft_adapter(SoftPromptWrapper(base, config, tokenizer=tokenizer), "sentiment-adapter")
        >>> fresh = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
        >>> peft_model = PeftModel.from_pretrained(fresh, "sentiment-adapter")
        >>> type(peft_model).__name__
        'PeftModelForSequenceClassification'
    """
    name = wrapper.active_prompt if name is None else name
    return write_adapter(wrapper.model, wrapper.slot(name), name, folder)


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

    Examples:
        >>> from transformers import AutoModelForSequenceClassification
        >>> base = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
        >>> config = SoftPromptConfig(num_virtual_tokens=4, placement="prepend")
        >>> folder = export_peft_adapter(SoftPromptWrapper(base, config), "peft-sentiment-adapter")  # or PEFT's own
        >>> fresh = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
        >>> imported = import_peft_adapter(fresh, "peft-sentiment-adapter", tokenizer=tokenizer)
        >>> imported.save_prompt("sentiment.safetensors")
        PosixPath('sentiment.safetensors')
    """
    slot = slot_from_adapter(model, folder)
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

    Examples:
        >>> from transformers import AutoModelForSequenceClassification
        >>> base = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
        >>> config = SoftPromptConfig(num_virtual_tokens=4, placement="prepend")
        >>> folder = export_peft_adapter(SoftPromptWrapper(base, config), "peft-sst2-adapter")
        >>> load_peft_adapter(wrapper, "peft-sst2-adapter", activate=True)
        'peft-sst2-adapter'
    """
    name = Path(folder).name if name is None else name
    if name in wrapper.prompts and not replace:
        raise ValueError(f"a prompt named {name!r} is loaded already; pass replace=True or another name")
    wrapper.add_slot(name, slot_from_adapter(wrapper.model, folder))
    if activate:
        wrapper.set_active_prompt(name)
    return name
