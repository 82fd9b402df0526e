"""Full fine-tuning with ``transformers.Trainer``: every weight trained, the baseline prompt tuning is measured against.

Examples:
    >>> from softprompt.finetune import finetune, load_finetuned
    >>> result = finetune(model, tok, train_ds, test_ds, output_dir="runs/sentiment-bert")  # doctest: +SKIP
    >>> model, tok = load_finetuned(result.model_dir)  # doctest: +SKIP
"""

from softprompt.finetune.saving import calibrate_finetuned, load_finetuned, save_finetuned
from softprompt.finetune.trainer import FinetuneResult, finetune

__all__ = ["FinetuneResult", "calibrate_finetuned", "finetune", "load_finetuned", "save_finetuned"]
