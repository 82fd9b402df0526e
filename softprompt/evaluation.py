"""Where a trained prompt or fine-tuned model is scored: accuracy and macro-F1 on a text dataset.

The same function scores the end of a training run and ``softprompt eval``, with the same
batching, so a reloaded prompt reproduces the run's accuracy to the last digit.
"""

from __future__ import annotations

import time
from typing import Any

import datasets
import torch
from torch import nn

from softprompt.inference import predict_logits
from softprompt.metrics import compute_classification_metrics

__all__ = ["evaluate_classifier"]


def evaluate_classifier(
    model: nn.Module,
    tokenizer: Any,
    dataset: datasets.Dataset,
    *,
    batch_size: int = 64,
    max_length: int | None = None,
    bf16: bool = False,
    progress: bool = False,
    max_batch_tokens: int | str | None = "auto",
) -> dict[str, float]:
    """Accuracy and macro-F1 of ``model`` on a ``text``/``label`` dataset.

    Args:
        model: A :class:`SoftPromptWrapper` or a ``transformers`` classification model.
        tokenizer: Its tokenizer.
        dataset: Untokenized rows with ``text`` and ``label`` (``load_text_classification(...).eval``).
        batch_size, max_length, bf16, max_batch_tokens: as for :func:`softprompt.predict_logits`.
        progress: Show a progress bar.

    Returns:
        ``eval_accuracy``, ``eval_f1``, ``eval_samples``, ``eval_runtime`` (s) and
        ``eval_samples_per_second``.

    Raises:
        ValueError: the dataset lacks ``text`` or ``label`` columns, or is empty.

    Example:
        >>> evaluate_classifier(wrapper, tok, data.eval)["eval_accuracy"]  # doctest: +SKIP
        0.874
    """
    missing = {"text", "label"} - set(dataset.column_names)
    if missing:
        raise ValueError(f"evaluation data lacks columns {sorted(missing)} (has {dataset.column_names})")
    if len(dataset) == 0:
        raise ValueError("evaluation data is empty")
    start = time.perf_counter()
    logits = predict_logits(
        model,
        tokenizer,
        dataset["text"],
        batch_size=batch_size,
        max_length=max_length,
        bf16=bf16,
        progress=progress,
        max_batch_tokens=max_batch_tokens,
    )
    seconds = time.perf_counter() - start
    metrics = compute_classification_metrics(
        logits.argmax(-1).numpy(), torch.as_tensor(dataset["label"]).numpy()
    )
    out = {f"eval_{k}": float(v) for k, v in metrics.items()}
    out.update(
        eval_samples=len(dataset), eval_runtime=seconds, eval_samples_per_second=len(dataset) / seconds
    )
    return out
