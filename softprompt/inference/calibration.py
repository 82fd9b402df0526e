"""Temperature scaling (Guo et al. 2017): one ``calibrate`` for prompt-tuned and fine-tuned classifiers.

A wrapper keeps the temperature in its active prompt (saved in the prompt file); a fine-tuned model
keeps it as ``config.softprompt_temperature`` (saved in its ``config.json``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from softprompt.core.constants import TEMPERATURE_KEY
from softprompt.core.protocols import is_prompted
from softprompt.engine.logits import predict_logits, validate_texts
from softprompt.models import backbone

__all__ = ["TEMPERATURE_KEY", "calibrate", "fit_temperature"]


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, *, max_iter: int = 200) -> float:
    """Temperature ``T`` minimising the NLL of ``softmax(logits / T)`` on held-out data.

    Args:
        logits: ``(n, C)`` validation logits.
        labels: ``(n,)`` true class ids.
        max_iter: L-BFGS iterations at most.

    Returns:
        ``T > 0`` (kept within ``[0.01, 100]``); below 1 sharpens the confidences, above 1 softens them.

    Raises:
        ValueError: logits that are not ``(n, C)``, labels that are not ``(n,)``, or no rows.

    Examples:
        >>> fit_temperature(torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 1])) < 1
        True
    """
    if logits.dim() != 2 or labels.shape != logits.shape[:1] or logits.shape[0] == 0:
        raise ValueError(
            f"need (n, C) logits and (n,) labels with n > 0, got {tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    logits, labels = logits.detach().float(), labels.detach().long()
    log_t = torch.zeros(1, requires_grad=True)  # optimise log T so T stays positive
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp().clamp(1e-2, 1e2))


def calibrate(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[Any],
    labels: Sequence[int] | torch.Tensor,
    *,
    batch_size: int = 32,
    max_length: int | None = None,
    bf16: bool = False,
) -> float:
    """Fit and store the softmax temperature of a single-label classifier on validation data.

    Args:
        model: A :class:`~softprompt.SoftPromptWrapper` (the active prompt gets the temperature)
            or a fine-tuned ``*ForSequenceClassification`` model (``config.softprompt_temperature``).
        tokenizer: Its tokenizer.
        texts: Validation texts or ``(text, text_pair)`` pairs (not the training data: there the
            model is overconfident).
        labels: Their class ids.
        batch_size: as for :func:`softprompt.predict_logits`.
        max_length: as for :func:`softprompt.predict_logits`.
        bf16: as for :func:`softprompt.predict_logits`.

    Returns:
        The temperature.

    Raises:
        ValueError: not one label per text, no texts, no tokenizer, or a task other than
            single-label classification (a temperature only rescales a softmax).

    Examples:
        >>> t = calibrate(wrapper, tokenizer, ["a great product", "a dull product", "great", "dull"], [1, 0, 1, 0])
        >>> wrapper.slot().temperature == t
        True
    """
    if tokenizer is None:
        raise ValueError("calibrate() needs a tokenizer: pass tokenizer=... to SoftPromptWrapper")
    is_wrapper = is_prompted(model)
    task = model.task if is_wrapper else backbone.sequence_task(model)
    if task is None or not task.is_classification:
        what = "no sequence head" if task is None else f"a {task.type.value} head"
        raise ValueError(
            f"calibrate() fits a softmax temperature for single-label classification; this model has {what}"
        )
    firsts, _ = validate_texts(texts)
    labels = torch.as_tensor(labels)
    if labels.shape != (len(firsts),) or not firsts:
        raise ValueError(
            f"calibrate() needs one label per text: {len(firsts)} texts, labels of shape {tuple(labels.shape)}"
        )
    num_labels = backbone.num_labels(model.model if is_wrapper else model)
    if (
        labels.dtype.is_floating_point
        or labels.dtype == torch.bool
        or (num_labels and not bool(((labels >= 0) & (labels < num_labels)).all()))
    ):
        raise ValueError(
            f"calibrate() needs class ids in [0, {num_labels}), got {labels.unique().tolist()[:10]}"
        )
    logits = predict_logits(model, tokenizer, texts, batch_size=batch_size, max_length=max_length, bf16=bf16)
    temperature = fit_temperature(logits, labels)
    if is_wrapper:
        model.slot(None).temperature = temperature
    else:
        setattr(model.config, TEMPERATURE_KEY, temperature)
    return temperature
