"""Full fine-tuning with ``transformers.Trainer``: every weight trained, the baseline prompt tuning is measured against.

Examples:
    >>> from softprompt.finetune import finetune, load_finetuned
    >>> from transformers import AutoModelForSequenceClassification
    >>> model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
    >>> result = finetune(model, tokenizer, train_ds, test_ds, output_dir="runs/sentiment-bert", num_train_epochs=1)
    >>> model, tokenizer = load_finetuned(result.model_dir)
"""

from softprompt.finetune.saving import calibrate_finetuned, load_finetuned, save_finetuned
from softprompt.finetune.trainer import FinetuneResult, finetune

__all__ = ["FinetuneResult", "calibrate_finetuned", "finetune", "load_finetuned", "save_finetuned"]
