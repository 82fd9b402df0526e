"""softprompt: prompt tuning and fine-tuning for Hugging Face encoders.

Full fine-tuning lives in the separate :mod:`softprompt.finetune` submodule.

Examples:
    >>> from softprompt import SoftPromptConfig, SoftPromptWrapper
    >>> wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=20), tokenizer=tok)  # doctest: +SKIP
"""

# Names are imported on first use (PEP 562), so `softprompt inspect` or `from softprompt import
# SoftPromptConfig` does not pay for importing Trainer and evaluate.
from typing import TYPE_CHECKING, Any

from softprompt import _legacy
from softprompt.version import __version__

_legacy.install()  # the 0.x module paths (softprompt.prompt_file, softprompt.peft_interop...) keep working

_EXPORTS = {
    "Answer": "softprompt.core.predictions",
    "AutoModelForTextToLabel": "softprompt.core.auto_model",
    "Entity": "softprompt.core.predictions",
    "GeneratedPrediction": "softprompt.core.predictions",
    "MultiLabelPrediction": "softprompt.core.predictions",
    "Overflow": "softprompt.core.config",
    "Placement": "softprompt.core.config",
    "Prediction": "softprompt.core.predictions",
    "PromptFile": "softprompt.files.prompt_file",
    "PromptInit": "softprompt.core.config",
    "PromptSlot": "softprompt.models.slot",
    "PromptTrainer": "softprompt.training.trainer",
    "PromptTrainingResult": "softprompt.training.trainer",
    "RegressionPrediction": "softprompt.core.predictions",
    "RunConfig": "softprompt.runs.config",
    "SoftPromptConfig": "softprompt.core.config",
    "SoftPromptWrapper": "softprompt.wrapper.model",
    "Task": "softprompt.core.task",
    "TaskData": "softprompt.data",
    "TaskType": "softprompt.core.task",
    "TextClassificationData": "softprompt.data",
    "TrainingResult": "softprompt.training.arguments",
    "build_compute_metrics": "softprompt.tasks.scoring",
    "calibrate": "softprompt.inference.calibration",
    "check_tokenized": "softprompt.data",
    "compute_classification_metrics": "softprompt.metrics",
    "compute_task_metrics": "softprompt.tasks.scoring",
    "decode": "softprompt.tasks.sequence_classification",
    "default_training_args": "softprompt.training.arguments",
    "evaluate_classifier": "softprompt.inference.evaluate",
    "evaluate_model": "softprompt.inference.evaluate",
    "export_peft_adapter": "softprompt.wrapper.peft",
    "fit_temperature": "softprompt.inference.calibration",
    "HeadFit": "softprompt.training.head_fit",
    "fit_regression_head": "softprompt.training.head_fit",
    "format_seed_summary": "softprompt.runs.seeds",
    "import_peft_adapter": "softprompt.wrapper.peft",
    "load_data": "softprompt.data",
    "load_metric": "softprompt.metrics",
    "load_peft_adapter": "softprompt.wrapper.peft",
    "load_text_classification": "softprompt.data",
    "predict": "softprompt.inference.dispatch",
    "predict_logits": "softprompt.engine.logits",
    "predict_with_wrapper": "softprompt.wrapper.predict",
    "read_prompt_file": "softprompt.files.prompt_file",
    "run_finetune": "softprompt.runs.recipes",
    "run_prompt_tuning": "softprompt.runs.recipes",
    "run_seeds": "softprompt.runs.seeds",
    "tokenize_dataset": "softprompt.data",
    "tokenize_text_to_label": "softprompt.data",
    "train_prompt": "softprompt.training.trainer",
}

__all__ = sorted([*_EXPORTS, "__version__"])  # one table: the names and where each lives


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        return _legacy.moved_attribute(name)
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly (tests/test_public_api.py
    # checks that this block and _EXPORTS agree)
    from softprompt.core.auto_model import AutoModelForTextToLabel
    from softprompt.core.config import Overflow, Placement, PromptInit, SoftPromptConfig
    from softprompt.core.predictions import (
        Answer,
        Entity,
        GeneratedPrediction,
        MultiLabelPrediction,
        Prediction,
        RegressionPrediction,
    )
    from softprompt.core.task import Task, TaskType
    from softprompt.data import (
        TaskData,
        TextClassificationData,
        check_tokenized,
        load_data,
        load_text_classification,
        tokenize_dataset,
        tokenize_text_to_label,
    )
    from softprompt.engine.logits import predict_logits
    from softprompt.files.prompt_file import PromptFile, read_prompt_file
    from softprompt.inference.calibration import calibrate, fit_temperature
    from softprompt.inference.dispatch import predict
    from softprompt.inference.evaluate import evaluate_classifier, evaluate_model
    from softprompt.metrics import compute_classification_metrics, load_metric
    from softprompt.models.slot import PromptSlot
    from softprompt.runs.config import RunConfig
    from softprompt.runs.recipes import run_finetune, run_prompt_tuning
    from softprompt.runs.seeds import format_seed_summary, run_seeds
    from softprompt.tasks.scoring import build_compute_metrics, compute_task_metrics
    from softprompt.tasks.sequence_classification import decode
    from softprompt.training.arguments import TrainingResult, default_training_args
    from softprompt.training.head_fit import HeadFit, fit_regression_head
    from softprompt.training.trainer import PromptTrainer, PromptTrainingResult, train_prompt
    from softprompt.wrapper.model import SoftPromptWrapper
    from softprompt.wrapper.peft import export_peft_adapter, import_peft_adapter, load_peft_adapter
    from softprompt.wrapper.predict import predict_with_wrapper
