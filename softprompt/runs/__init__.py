"""Recipes: a whole run from one `RunConfig` (data, model, training, scoring, the run folder), seeds and plots.

``config`` (``RunConfig``), ``overrides`` (its ``TrainingArguments`` fields), ``config_file`` (``--config``
files), ``loading`` (data and model of a run), ``recipes`` (``run_prompt_tuning``, ``run_finetune``),
``seeds`` (several seeds, mean and spread) and ``plots`` (training curves).

Examples:
    >>> from softprompt.runs import RunConfig, run_prompt_tuning
    >>> results = run_prompt_tuning(RunConfig(model="bert-base-uncased", data="reviews.csv"))  # doctest: +SKIP
"""

from typing import Any

__all__ = ["RunConfig", "run_finetune", "run_prompt_tuning", "summary"]


def __getattr__(name: str) -> Any:  # imported on first use: a recipe pulls in Trainer, a config does not
    if name == "RunConfig":
        from softprompt.runs.config import RunConfig

        return RunConfig
    if name in ("run_finetune", "run_prompt_tuning", "summary"):
        from softprompt.runs import recipes

        return getattr(recipes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
