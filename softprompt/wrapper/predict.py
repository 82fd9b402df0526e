"""Prediction with a wrapper's named prompts: one prompt (thread-safe, by name) or an ensemble of several.

What :meth:`SoftPromptWrapper.predict` does: one prompt goes through :func:`softprompt.predict` (the one
dispatch over the task table) with that prompt's task, labels and temperature; an ensemble averages
several classifiers' probabilities in shared batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from softprompt.core.predictions import to_predictions
from softprompt.engine.logits import check_batching, predict_logits, validate_texts
from softprompt.inference.dispatch import predict

__all__ = ["ensemble_probabilities", "predict_with_wrapper"]


def predict_with_wrapper(
    wrapper: nn.Module,
    texts: Sequence[Any],
    *,
    prompt: str | None = None,
    prompts: Sequence[str] | None = None,
    batch_size: int = 32,
    max_length: int | None = None,
    bf16: bool = False,
    max_batch_tokens: int | str | None = "auto",
    **answer_options: Any,
) -> list[Any]:
    """What :meth:`SoftPromptWrapper.predict` does: one prompt, or an ensemble of several.

    Args:
        wrapper: The :class:`~softprompt.SoftPromptWrapper` (with its tokenizer).
        texts: Strings, or ``(text, text_pair)`` tuples; for a token-classification prompt,
            strings (split on whitespace into words) or lists of words, and each prediction is
            a list of :class:`~softprompt.Entity` (see :func:`softprompt.tasks.entities.predict_entities`);
            for a question-answering prompt, ``(question, context)`` pairs, each answered by an
            :class:`~softprompt.Answer` (see :func:`softprompt.tasks.answers.predict_answers`).
        prompt: The prompt to use (default: the active one). Passing it, rather than switching
            the active prompt, is safe when several threads predict with different prompts.
        prompts: Names of single-label classification prompts to ensemble (Lester et al. 2021):
            the softmax probabilities (each with its prompt's temperature) are averaged.
        batch_size: as for :func:`predict_logits`.
        max_length: as for :func:`predict_logits`.
        bf16: as for :func:`predict_logits`.
        max_batch_tokens: as for :func:`predict_logits`.
        **answer_options: Question answering only: ``stride=`` and ``max_answer_length=``.

    Returns:
        One prediction per input, in order (an ensemble's: the mean of its prompts' calibrated probabilities).

    Raises:
        KeyError: an unknown prompt name.
        TypeError: ``answer_options`` for a prompt that is not question answering.
        ValueError: no tokenizer; ``prompt`` and ``prompts`` both given; an empty or repeated
            ``prompts`` list, prompts that cannot share a batch, disagree on labels, or are not
            single-label classifiers.

    Examples:
        >>> wrapper.load_prompt(wrapper.save_prompt("second.safetensors"))
        'second'
        >>> predict_with_wrapper(wrapper, ["a great product"], prompts=["default", "second"])
        [Prediction(label=..., label_name=..., confidence=...)]
    """
    if wrapper.tokenizer is None:
        raise ValueError("predict() needs a tokenizer: pass tokenizer=... to SoftPromptWrapper")
    common = {
        "batch_size": batch_size,
        "max_length": max_length,
        "bf16": bf16,
        "max_batch_tokens": max_batch_tokens,
    }
    if prompts is None:
        # the prompt is fixed when the call starts: another thread's set_active_prompt cannot switch it
        # between batches (the labels below would then be another prompt's)
        name = wrapper.active_prompt if prompt is None else prompt
        with wrapper.using_prompts([name]):  # removing or replacing it waits for this call
            slot = wrapper.slot(name)
            return predict(
                wrapper, wrapper.tokenizer, texts, task=slot.task, id2label=slot.id2label or {},
                temperature=slot.temperature, prompt=name, **common, **answer_options,
            )  # fmt: skip
    if prompt is not None:
        raise ValueError("pass prompt= (one prompt) or prompts= (an ensemble), not both")
    if answer_options:
        raise TypeError(
            f"{sorted(answer_options)} are question-answering options; ensembles are of classifiers"
        )
    names = list(prompts) if not isinstance(prompts, str) else []
    if not names or len(set(names)) != len(names):
        raise ValueError(f"prompts must be a list of distinct prompt names, got {prompts!r}")
    slots = [(name, wrapper.slot(name)) for name in names]
    id2label = slots[0][1].id2label
    for other, slot in slots:
        if slot.task is not None and not slot.task.is_classification:
            raise ValueError(
                f"only single-label classification prompts can be ensembled; {other!r} is {slot.task.type.value}"
            )
        if slot.id2label != id2label:
            raise ValueError(
                f"prompts in an ensemble must share their labels: {names[0]!r} has id2label {id2label}, "
                f"{other!r} has {slot.id2label}"
            )
    wrapper.batch_slots(names, len(names))  # can they share a batch?
    with wrapper.using_prompts(names):  # removing or replacing one waits for this call
        temperatures = [slot.temperature for _, slot in slots]
        probs = ensemble_probabilities(
            wrapper, wrapper.tokenizer, texts, names, temperatures=temperatures, **common
        )
    return to_predictions(probs, id2label or getattr(wrapper.config, "id2label", None) or {})


def ensemble_probabilities(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    prompt_names: Sequence[str],
    *,
    temperatures: Sequence[float] | None = None,
    batch_size: int = 32,
    max_length: int | None = None,
    bf16: bool = False,
    max_batch_tokens: int | str | None = "auto",
) -> torch.Tensor:
    """Mean of several prompts' softmax probabilities per text, ``(len(texts), num_labels)`` fp32.

    Each text is repeated once per prompt and the copies run in the same mixed-prompt batch
    (``prompt_names`` per row), so the backbone runs once per batch of ``batch_size`` texts
    (``batch_size * len(prompt_names)`` rows). Lester et al. (2021) ensemble prompts this way.

    Args:
        model: A :class:`SoftPromptWrapper` holding every prompt in ``prompt_names``.
        tokenizer: Its tokenizer.
        texts: The texts.
        prompt_names: The prompts to average; they must be able to share a batch.
        temperatures: One softmax temperature per prompt (default: all 1.0).
        batch_size: as for :func:`predict_logits`
            (``max_batch_tokens`` counts rows, so a token-capped batch holds fewer texts).
        max_length: as for :func:`predict_logits`
            (``max_batch_tokens`` counts rows, so a token-capped batch holds fewer texts).
        bf16: as for :func:`predict_logits`
            (``max_batch_tokens`` counts rows, so a token-capped batch holds fewer texts).
        max_batch_tokens: as for :func:`predict_logits`
            (``max_batch_tokens`` counts rows, so a token-capped batch holds fewer texts).

    Raises:
        TypeError: ``texts`` is not a list of strings.
        ValueError: no prompt names, or temperatures of the wrong length or not positive.

    Examples:
        >>> ensemble_probabilities(wrapper, tok, ["great product"], ["a", "b"], temperatures=[1.0, 0.7])  # doctest: +SKIP
        tensor([[0.1200, 0.8800]])
    """
    firsts, pairs = validate_texts(texts)
    names = list(prompt_names)
    if not names or isinstance(prompt_names, str):
        raise ValueError(f"prompt_names must be a non-empty list of prompt names, got {prompt_names!r}")
    temps = torch.tensor(
        [1.0] * len(names) if temperatures is None else list(temperatures), dtype=torch.float32
    )
    if temps.shape != (len(names),) or not bool((temps > 0).all() and torch.isfinite(temps).all()):
        raise ValueError(f"need one positive temperature per prompt ({len(names)}), got {temperatures!r}")
    check_batching(batch_size, None, len(firsts))
    if not firsts:
        return torch.empty(0, 0)
    k = len(names)
    # text-major: a text's k copies have one length, so the (stable) length sort keeps them together
    items = firsts if pairs is None else list(zip(firsts, pairs))
    repeated = [item for item in items for _ in range(k)]
    logits = predict_logits(
        model, tokenizer, repeated, batch_size=batch_size * k, max_length=max_length, bf16=bf16,
        prompt_names=names * len(texts), max_batch_tokens=max_batch_tokens,
    )  # fmt: skip
    logits = logits.view(len(firsts), k, -1)  # (n, k, C)
    return torch.softmax(logits / temps.view(1, k, 1), dim=-1).mean(1)  # (n, C)
