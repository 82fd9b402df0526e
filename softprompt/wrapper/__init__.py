"""The wrapper layer: `SoftPromptWrapper` and what binds the layers below to it.

``model`` (the ``nn.Module``), ``pretrained`` (prompt folders and the Hub), ``generation``
(``generate`` for language models), ``predict`` (named prompts and ensembles) and ``peft`` (PEFT
adapter folders). Everything below this layer works on prompt slots and never imports the wrapper.

Examples:
    >>> from softprompt.wrapper import SoftPromptWrapper
"""

from softprompt.wrapper.model import DEFAULT_NAME, SoftPromptWrapper

__all__ = ["DEFAULT_NAME", "SoftPromptWrapper"]
