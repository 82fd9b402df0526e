"""Every name and number more than one module agrees on: file names, label padding, default lengths.

Defined once here (PEFT keeps its file names in ``utils/constants.py`` the same way), imported everywhere else.

Examples:
    >>> from softprompt.core.constants import IGNORE_INDEX, PROMPT_NAME
    >>> IGNORE_INDEX, PROMPT_NAME
    (-100, 'prompt.safetensors')
"""

from __future__ import annotations

__all__ = [
    "ANSWER_POSITION_KEYS",
    "CARD_NAME",
    "DEFAULT_MAX_LENGTH",
    "EXPORT_KEY",
    "IGNORE_INDEX",
    "MAX_TEXT_CHARS",
    "ONNX_NAME",
    "ONNX_QUANTIZED_NAME",
    "PEFT_CONFIG_NAME",
    "PEFT_PICKLE_WEIGHTS_NAME",
    "PEFT_WEIGHTS_NAME",
    "PROMPT_NAME",
    "QA_OUTPUT_NAMES",
    "TEMPERATURE_KEY",
    "TRAINING_ARGS_FILE",
]

# what Hugging Face losses skip; virtual positions, sub-word continuations and padding never carry a label
IGNORE_INDEX = -100
# when neither the caller nor the model sets a limit (BERT-family encoders have 512 positions)
DEFAULT_MAX_LENGTH = 512

# a prompt folder (a run's output, a Hub repo): the prompt, its model card, and PEFT's two files
PROMPT_NAME = "prompt.safetensors"
CARD_NAME = "README.md"
PEFT_CONFIG_NAME = "adapter_config.json"
PEFT_WEIGHTS_NAME = "adapter_model.safetensors"
PEFT_PICKLE_WEIGHTS_NAME = (
    "adapter_model.bin"  # PEFT's legacy torch.save file: never read (unpickling runs code)
)
# the training arguments as readable JSON, beside a checkpoint's prompt or a fine-tuned model
TRAINING_ARGS_FILE = "training_args.json"

# the longest text a streamed prediction hands the tokenizer, in characters: far more than any model's positions
# hold (512 tokens are a few thousand characters), and small enough that a 50 MB line no longer exhausts memory
MAX_TEXT_CHARS = 1_000_000

# where a merged export's config.json says how it was made (softprompt.hub.merged), and its ONNX files
EXPORT_KEY = "softprompt_export"
ONNX_NAME = "model.onnx"
ONNX_QUANTIZED_NAME = "model_quantized.onnx"

# where a fine-tuned model's config.json keeps its calibration temperature
TEMPERATURE_KEY = "softprompt_temperature"

# a question-answering head's two outputs per token, in order, and the labels that train them
QA_OUTPUT_NAMES = ("start", "end")
ANSWER_POSITION_KEYS = ("start_positions", "end_positions")
