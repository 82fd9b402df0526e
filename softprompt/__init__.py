"""softprompt: prompt tuning and fine-tuning for Hugging Face encoders.

Full fine-tuning lives in the separate :mod:`softprompt.finetune` submodule.

Example:
    >>> from softprompt import SoftPromptConfig, SoftPromptWrapper
    >>> wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=20), tokenizer=tok)  # doctest: +SKIP
"""

from softprompt.config import Overflow, Placement, PromptInit, SoftPromptConfig
from softprompt.data import TextClassificationData, load_text_classification, tokenize_dataset
from softprompt.evaluation import evaluate_classifier
from softprompt.metrics import build_compute_metrics, compute_classification_metrics, load_metric
from softprompt.peft_interop import export_peft_adapter, import_peft_adapter, load_peft_adapter
from softprompt.predict import Prediction, fit_temperature, predict, predict_logits
from softprompt.prompt_file import PromptFile, read_prompt_file
from softprompt.runs import RunConfig, run_finetune, run_prompt_tuning
from softprompt.trainer import PromptTrainer, PromptTrainingResult, train_prompt
from softprompt.training_args import default_training_args
from softprompt.version import __version__
from softprompt.wrapper import PromptSlot, SoftPromptWrapper

__all__ = [
    "Overflow",
    "Placement",
    "Prediction",
    "PromptFile",
    "PromptInit",
    "PromptSlot",
    "PromptTrainer",
    "PromptTrainingResult",
    "RunConfig",
    "SoftPromptConfig",
    "SoftPromptWrapper",
    "TextClassificationData",
    "__version__",
    "build_compute_metrics",
    "compute_classification_metrics",
    "default_training_args",
    "evaluate_classifier",
    "export_peft_adapter",
    "fit_temperature",
    "import_peft_adapter",
    "load_metric",
    "load_peft_adapter",
    "load_text_classification",
    "predict",
    "predict_logits",
    "read_prompt_file",
    "run_finetune",
    "run_prompt_tuning",
    "tokenize_dataset",
    "train_prompt",
]
