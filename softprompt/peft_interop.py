"""PEFT interoperability: a prompt as a PEFT prompt-tuning adapter folder and back (exact logits both ways).

PEFT's prompt tuning is softprompt's ``placement="prepend"``. Export is :mod:`softprompt.peft_export`,
import :mod:`softprompt.peft_import`; this module is the public name for both.
"""

from softprompt.peft_export import export_peft_adapter
from softprompt.peft_import import import_peft_adapter, load_peft_adapter

__all__ = ["export_peft_adapter", "import_peft_adapter", "load_peft_adapter"]
