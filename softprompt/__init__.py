"""softprompt: prompt tuning and fine-tuning for Hugging Face encoders.

Full fine-tuning lives in the separate :mod:`softprompt.finetune` submodule.

Example:
    >>> from softprompt import SoftPromptConfig, SoftPromptWrapper
    >>> wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=20), tokenizer=tok)  # doctest: +SKIP
"""

# Names are imported on first use (PEP 562), so `softprompt inspect` or `from softprompt import
# SoftPromptConfig` does not pay for importing Trainer and evaluate.
from typing import TYPE_CHECKING, Any

from softprompt.version import __version__

_EXPORTS = {
    "Answer": "softprompt.predictions",
    "AutoModelForTextToLabel": "softprompt.text_to_label",
    "Entity": "softprompt.predictions",
    "GeneratedPrediction": "softprompt.predictions",
    "MultiLabelPrediction": "softprompt.predictions",
    "Overflow": "softprompt.config",
    "Placement": "softprompt.config",
    "Prediction": "softprompt.predictions",
    "PromptFile": "softprompt.prompt_file",
    "PromptInit": "softprompt.config",
    "PromptSlot": "softprompt.slot",
    "PromptTrainer": "softprompt.trainer",
    "PromptTrainingResult": "softprompt.trainer",
    "RegressionPrediction": "softprompt.predictions",
    "RunConfig": "softprompt.run_config",
    "SoftPromptConfig": "softprompt.config",
    "SoftPromptWrapper": "softprompt.wrapper",
    "Task": "softprompt.task",
    "TaskData": "softprompt.data",
    "TaskType": "softprompt.task",
    "TextClassificationData": "softprompt.data",
    "TrainingResult": "softprompt.training_args",
    "build_compute_metrics": "softprompt.metrics",
    "calibrate": "softprompt.calibration",
    "check_tokenized": "softprompt.data",
    "compute_classification_metrics": "softprompt.metrics",
    "compute_task_metrics": "softprompt.metrics",
    "decode": "softprompt.predictions",
    "default_training_args": "softprompt.training_args",
    "evaluate_classifier": "softprompt.evaluation",
    "evaluate_model": "softprompt.evaluation",
    "export_peft_adapter": "softprompt.peft_interop",
    "fit_temperature": "softprompt.calibration",
    "format_seed_summary": "softprompt.seeds",
    "import_peft_adapter": "softprompt.peft_interop",
    "load_data": "softprompt.data",
    "load_metric": "softprompt.metrics",
    "load_peft_adapter": "softprompt.peft_interop",
    "load_text_classification": "softprompt.data",
    "predict": "softprompt.inference",
    "predict_logits": "softprompt.inference",
    "predict_with_wrapper": "softprompt.prompt_inference",
    "read_prompt_file": "softprompt.prompt_file",
    "run_finetune": "softprompt.runs",
    "run_prompt_tuning": "softprompt.runs",
    "run_seeds": "softprompt.seeds",
    "tokenize_dataset": "softprompt.data",
    "tokenize_text_to_label": "softprompt.data",
    "train_prompt": "softprompt.trainer",
}

__all__ = [
    "Answer",
    "AutoModelForTextToLabel",
    "Entity",
    "GeneratedPrediction",
    "MultiLabelPrediction",
    "Overflow",
    "Placement",
    "Prediction",
    "PromptFile",
    "PromptInit",
    "PromptSlot",
    "PromptTrainer",
    "PromptTrainingResult",
    "RegressionPrediction",
    "RunConfig",
    "SoftPromptConfig",
    "SoftPromptWrapper",
    "Task",
    "TaskData",
    "TaskType",
    "TextClassificationData",
    "TrainingResult",
    "__version__",
    "build_compute_metrics",
    "calibrate",
    "check_tokenized",
    "compute_classification_metrics",
    "compute_task_metrics",
    "decode",
    "default_training_args",
    "evaluate_classifier",
    "evaluate_model",
    "export_peft_adapter",
    "fit_temperature",
    "format_seed_summary",
    "import_peft_adapter",
    "load_data",
    "load_metric",
    "load_peft_adapter",
    "load_text_classification",
    "predict",
    "predict_logits",
    "predict_with_wrapper",
    "read_prompt_file",
    "run_finetune",
    "run_prompt_tuning",
    "run_seeds",
    "tokenize_dataset",
    "tokenize_text_to_label",
    "train_prompt",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'softprompt' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from softprompt.calibration import calibrate, fit_temperature
    from softprompt.config import Overflow, Placement, PromptInit, SoftPromptConfig
    from softprompt.data import (
        TaskData,
        TextClassificationData,
        check_tokenized,
        load_data,
        load_text_classification,
        tokenize_dataset,
        tokenize_text_to_label,
    )
    from softprompt.evaluation import evaluate_classifier, evaluate_model
    from softprompt.inference import predict, predict_logits
    from softprompt.metrics import (
        build_compute_metrics,
        compute_classification_metrics,
        compute_task_metrics,
        load_metric,
    )
    from softprompt.peft_interop import export_peft_adapter, import_peft_adapter, load_peft_adapter
    from softprompt.predictions import (
        Answer,
        Entity,
        GeneratedPrediction,
        MultiLabelPrediction,
        Prediction,
        RegressionPrediction,
        decode,
    )
    from softprompt.prompt_file import PromptFile, read_prompt_file
    from softprompt.prompt_inference import predict_with_wrapper
    from softprompt.run_config import RunConfig
    from softprompt.runs import run_finetune, run_prompt_tuning
    from softprompt.seeds import format_seed_summary, run_seeds
    from softprompt.slot import PromptSlot
    from softprompt.task import Task, TaskType
    from softprompt.text_to_label import AutoModelForTextToLabel
    from softprompt.trainer import PromptTrainer, PromptTrainingResult, train_prompt
    from softprompt.training_args import TrainingResult, default_training_args
    from softprompt.wrapper import SoftPromptWrapper
