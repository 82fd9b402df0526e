"""The base model a prompt file needs, loaded by name: the right ``AutoModelFor*`` class, head size and labels.

A prompt file records its task, its labels and its head, so a caller names only the backbone
(``"bert-base-uncased"`` or a folder); the head the checkpoint has (or lacks) is replaced by the file's.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from softprompt.files.prompt_file import PromptFile

__all__ = ["load_base_model"]


def load_base_model(name: str | os.PathLike[str], pf: PromptFile, **kwargs: Any) -> nn.Module:
    """``from_pretrained`` of the model class ``pf``'s task needs, with its number of labels and their names.

    Args:
        name: Hub id or local folder of the base model the prompt was trained on.
        pf: The prompt file (:func:`softprompt.read_prompt_file`).
        **kwargs: More ``from_pretrained`` arguments (``revision``, ``cache_dir``...).

    Returns:
        The model, in eval mode; a head of another size in the checkpoint is replaced (the prompt file
        brings its own).

    Examples:
        >>> model = load_base_model("bert-base-uncased", read_prompt_file("runs/pt/prompt.safetensors"))  # doctest: +SKIP
    """
    import transformers

    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"the base model must be a Hub id or a folder, got {type(name).__name__}")
    if pf.num_labels:
        kwargs.setdefault("num_labels", pf.num_labels)
        if pf.id2label:  # an empty id2label would set num_labels to 0 in the config
            kwargs.setdefault("id2label", pf.id2label)
    if pf.task is not None:
        kwargs.setdefault("problem_type", pf.task.problem_type)
        auto_class = pf.task.auto_model_class
    else:
        auto_class = transformers.AutoModel
    return auto_class.from_pretrained(os.fspath(name), ignore_mismatched_sizes=True, **kwargs).eval()
