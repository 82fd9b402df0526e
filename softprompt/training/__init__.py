"""Training with ``transformers.Trainer``: the prompt trainer and the assembly it shares with fine-tuning.

``arguments`` (``TrainingArguments`` defaults, ``TrainingResult``), ``assembly`` (checks, arguments,
collator and metrics from the task's family; the run), ``sampling`` (seeded length-grouped batches),
``trainer`` (``PromptTrainer``, ``train_prompt``), ``checkpoints`` (which checkpoint folders are complete), ``head_fit`` (a new regression head's
least-squares start, before prompt tuning).
"""
