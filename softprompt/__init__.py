"""softprompt: prompt tuning and fine-tuning for Hugging Face encoders.

Example:
    >>> from softprompt import SoftPromptConfig, SoftPromptWrapper
    >>> wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=20), tokenizer=tok)  # doctest: +SKIP
"""

from softprompt.config import Overflow, Placement, PromptInit, SoftPromptConfig
from softprompt.prompt_file import PromptFile, read_prompt_file
from softprompt.version import __version__
from softprompt.wrapper import PromptSlot, SoftPromptWrapper

__all__ = [
    "Overflow",
    "Placement",
    "PromptFile",
    "PromptInit",
    "PromptSlot",
    "SoftPromptConfig",
    "SoftPromptWrapper",
    "__version__",
    "read_prompt_file",
]
