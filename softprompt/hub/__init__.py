"""Prompt folders, model cards, the PEFT adapter format and the Hub transport; all on prompt slots, never the wrapper.

``folder`` (what a prompt folder holds, written atomically), ``model_card``, ``peft_format`` /
``peft_export`` / ``peft_import`` (PEFT's prompt-tuning adapter), ``transport`` (download and upload).
The wrapper's ``save_pretrained``/``from_pretrained``/``push_to_hub`` call down into them.

Examples:
    >>> from softprompt.hub import download_first, upload_prompt_folder
"""

from typing import Any

__all__ = ["download_first", "upload_prompt_folder"]


def __getattr__(name: str) -> Any:  # the old ``softprompt.hub`` module's names, imported on first use
    if name in __all__:
        from softprompt.hub import transport

        return getattr(transport, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
