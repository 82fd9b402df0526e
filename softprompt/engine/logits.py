"""The batching engine under every prediction: logits per text (or per token) for a wrapper or a bare model.

Texts (or ``(text, text_pair)`` pairs) are tokenized once, sorted by length so each batch pads
little, run under ``torch.inference_mode``, and returned in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from softprompt.core.constants import DEFAULT_MAX_LENGTH
from softprompt.core.protocols import is_prompted
from softprompt.models import backbone
from softprompt.models.first_token import first_token_model
from softprompt.models.modes import eval_mode
from softprompt.models.onednn import onednn_default, packed_linears
from softprompt.utils.heap import retained_heap, retained_heap_default

__all__ = [
    "CPU_MAX_BATCH_TOKENS",
    "check_batching",
    "forward_rows",
    "input_limit",
    "length_batches",
    "model_device",
    "predict_logits",
    "token_cap",
    "validate_texts",
]

# On a CPU, a batch's activations should stay cache-sized: past ~1-2k (rows x padded length) tokens
# the FFN's (tokens, 4H) intermediate leaves the cache and every token gets slower. MiniLM on 2 cores:
# batches of 32 uncapped ~11 texts/s, capped at 1024 tokens ~15 (docs/benchmarks.md).
# Accelerators want big batches: no token cap there.
CPU_MAX_BATCH_TOKENS = 1024


def check_batching(
    batch_size: Any, prompt_names: Sequence[str] | None, count: int, what: str = "texts"
) -> None:
    """The batch size and the per-input prompt names every prediction path takes.

    Raises:
        ValueError: ``batch_size`` is not a positive int, or ``prompt_names`` does not name one prompt per input.

    Examples:
        >>> check_batching(8, ["a", "b"], 2)
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if prompt_names is not None and len(prompt_names) != count:
        raise ValueError(f"prompt_names has {len(prompt_names)} names for {count} {what}")


def validate_texts(texts: Any) -> tuple[list[str], list[str] | None]:
    """Split inputs into ``(texts, text_pairs or None)``: all strings, or all ``(text, text_pair)`` pairs.

    Raises:
        TypeError: not a list, an item that is neither a string nor a pair of strings, or a mix.

    Examples:
        >>> validate_texts([("a man sings", "a person sings")])
        (['a man sings'], ['a person sings'])
    """
    if isinstance(texts, (str, bytes, tuple)) or not isinstance(texts, Sequence):
        raise TypeError(
            f"texts must be a list of strings or of (text, text_pair) tuples, got {type(texts).__name__}; "
            "wrap a single input as [text] or [(text, text_pair)]"
        )
    firsts: list[str] = []
    seconds: list[str] = []
    for i, item in enumerate(texts):
        if isinstance(item, str):
            firsts.append(item)
        elif isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(t, str) for t in item):
            firsts.append(item[0])
            seconds.append(item[1])
        else:
            raise TypeError(
                f"texts[{i}] is {type(item).__name__} ({item!r:.60}), not a string or a (text, text_pair) tuple of strings"
            )
        if seconds and len(seconds) != len(firsts):
            raise TypeError(f"texts mixes single texts and (text, text_pair) pairs (first mix at texts[{i}])")
    return firsts, (seconds or None)


def input_limit(model: nn.Module, max_length: int | None, prompt_name: str | None = None) -> int:
    """Most tokens a text may have: ``max_length`` capped by the model's positions (a wrapper's: less its prompt).

    Examples:
        >>> input_limit(model, 128)  # doctest: +SKIP
        128
    """
    if is_prompted(model):  # room left after the virtual tokens
        return model.max_input_length(max_length, name=prompt_name)
    limit = backbone.max_positions(model) or DEFAULT_MAX_LENGTH
    return min(limit, max_length) if max_length else limit


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter: where its inputs go.

    Examples:
        >>> model_device(nn.Linear(2, 2))
        device(type='cpu')
    """
    return next(model.parameters()).device


def token_cap(max_batch_tokens: int | str | None, device: torch.device) -> int | None:
    """The padded-token cap of a batch: ``"auto"`` is :data:`CPU_MAX_BATCH_TOKENS` on a CPU, none elsewhere.

    Raises:
        ValueError: not a positive int, ``"auto"`` or ``None``.

    Examples:
        >>> token_cap("auto", torch.device("cpu"))
        1024
    """
    if max_batch_tokens == "auto":
        return CPU_MAX_BATCH_TOKENS if device.type == "cpu" else None
    if max_batch_tokens is None or (
        isinstance(max_batch_tokens, int) and not isinstance(max_batch_tokens, bool) and max_batch_tokens >= 1
    ):
        return max_batch_tokens
    raise ValueError(f"max_batch_tokens must be a positive int, 'auto' or None, got {max_batch_tokens!r}")


def length_batches(lengths: Sequence[int], batch_size: int, max_tokens: int | None = None) -> list[list[int]]:
    """Row indices grouped into batches, longest rows first, for padding-to-the-longest.

    A batch holds at most ``batch_size`` rows and, with ``max_tokens``, at most ``max_tokens``
    padded tokens (rows x its longest row); a single row longer than ``max_tokens`` is a batch alone.

    Examples:
        >>> length_batches([3, 9, 5, 9], batch_size=3, max_tokens=20)
        [[1, 3], [2, 0]]
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])  # stable: ties keep input order
    batches: list[list[int]] = []
    for i in order:
        batch = batches[-1] if batches else None
        # rows arrive longest first, so the batch's padded length is its first row's
        if (
            batch
            and len(batch) < batch_size
            and (max_tokens is None or (len(batch) + 1) * lengths[batch[0]] <= max_tokens)
        ):
            batch.append(i)
        else:
            batches.append([i])
    return batches


def predict_logits(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    batch_size: int = 32,
    max_length: int | None = None,
    bf16: bool = False,
    prompt_names: Sequence[str] | None = None,
    progress: bool = False,
    max_batch_tokens: int | str | None = "auto",
) -> torch.Tensor:
    """Logits ``(len(texts), num_labels)`` in fp32, in input order, on the CPU (whatever the model's device).

    Args:
        model: A :class:`SoftPromptWrapper` or a ``transformers`` classification model.
        tokenizer: Its tokenizer.
        texts: Strings, or ``(text, text_pair)`` tuples tokenized as pairs; each input is
            truncated to fit (with the virtual tokens, for a wrapper; pairs longest-first).
        batch_size: Most texts per forward pass.
        max_length: Cap on tokens per text (default: the model's limit).
        max_batch_tokens: Most padded tokens per forward pass (rows x longest row); ``"auto"``
            caps CPU batches at :data:`CPU_MAX_BATCH_TOKENS` and leaves accelerators uncapped;
            ``None``: no cap. Batching changes only float rounding, never which texts are scored.
        bf16: For a :class:`SoftPromptWrapper`, hold its frozen backbone in bf16 (cast once, as
            ``train_prompt(bf16=True)`` does); for other models, run under bf16 autocast.
        prompt_names: For a wrapper, one prompt name per text (mixed-prompt batches).
        progress: Show a progress bar over the batches.

    Returns:
        ``(len(texts), num_labels)`` fp32 logits on the CPU.

    Raises:
        TypeError: ``texts`` is not a list of strings.
        ValueError: ``batch_size`` < 1, ``max_batch_tokens`` invalid, or ``prompt_names`` of the
            wrong length.

    Examples:
        >>> logits = predict_logits(wrapper, tokenizer, ["a great product", "a dull one", "a third"])
        >>> logits.shape, logits.dtype
        (torch.Size([3, 2]), torch.float32)
    """
    texts, pairs = validate_texts(texts)
    check_batching(batch_size, prompt_names, len(texts))
    device = model_device(model)
    max_tokens = token_cap(max_batch_tokens, device)
    if not texts:
        return torch.empty(0, 0)
    # prompts mixed in one batch share num_virtual_tokens, so the first one's room fits them all
    limit = input_limit(model, max_length, prompt_names[0] if prompt_names else None)
    encoded = tokenizer(texts, pairs, truncation=True, max_length=limit)
    rows = forward_rows(
        model, tokenizer, encoded, batch_size=batch_size, bf16=bf16, prompt_names=prompt_names,
        progress=progress, max_tokens=max_tokens,
    )  # fmt: skip
    if rows[0].dim() != 1:
        raise ValueError(
            f"{type(model).__name__} gives one row of logits per token, not per text; for a token-classification "
            "or question-answering head use predict() (entities, answers) or softprompt.tasks.entities.word_logits"
        )
    return torch.stack(rows)  # (n, C)


def forward_rows(
    model: nn.Module,
    tokenizer: Any,
    encoded: Any,
    *,
    batch_size: int,
    bf16: bool = False,
    prompt_names: Sequence[str] | None = None,
    progress: bool = False,
    max_tokens: int | None = None,
) -> list[torch.Tensor]:
    """Each tokenized row's logits, fp32 on the CPU, in input order: ``(C,)`` from a sequence head,
    ``(T_i, C)`` (the row's own tokens, padding cut) from a token head, ``(T_i, 2)`` start and end
    logits from a question-answering head.

    Rows are run in length-sorted batches (:func:`length_batches`), padded by ``tokenizer.pad``,
    under ``torch.inference_mode``; ``bf16`` as for :func:`predict_logits`.

    Args:
        model: As for :func:`predict_logits`.
        tokenizer: As for :func:`predict_logits`.
        encoded: The tokenizer's unpadded output (``input_ids`` and the rest, one list per row).
        batch_size: Most rows per forward pass.
        max_tokens: Most padded tokens (rows x longest row) per forward pass.
        bf16: As for :func:`predict_logits`.
        prompt_names: As for :func:`predict_logits`.
        progress: As for :func:`predict_logits`.
    """
    device = model_device(model)
    lengths = [len(ids) for ids in encoded["input_ids"]]
    batches = length_batches(lengths, batch_size, max_tokens)  # longest first: memory peaks early
    autocast = bf16
    if bf16 and is_prompted(model):
        if model.backbone_dtype != torch.bfloat16:
            model.cast_backbone(torch.bfloat16)
        autocast = False
    # a fine-tuned [CLS] classifier gets the wrapper's levers too: its last layer for position 0 alone
    # (exact to float rounding, models.first_token) and, below, its weights packed while gradients are off
    # (``model.trim_last_layer = False`` / ``model.onednn_linear = False`` turn them off, as on a wrapper)
    trim = not is_prompted(model) and getattr(model, "trim_last_layer", True)
    runner = (first_token_model(model) if trim else None) or model
    rows: list[torch.Tensor] = [torch.empty(0)] * len(lengths)
    with (
        eval_mode(model),  # dropout off; every module's own mode back afterwards (a served model: no switch)
        torch.inference_mode(),
        torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast),
        backbone.attention_kernels(device),  # fine-tuned models too: no per-length cuDNN plans
        # fp32 linears as prepacked oneDNN GEMMs, where measured faster (models.onednn.onednn_default)
        packed_linears(_onednn_wanted(model)),
        retained_heap(retained_heap_default()),  # each batch reuses the last one's pages (utils.heap)
    ):
        for index in tqdm(batches, desc="predicting", unit="batch", disable=not progress):
            features = [{k: encoded[k][i] for k in encoded} for i in index]
            batch = {k: v.to(device) for k, v in tokenizer.pad(features, return_tensors="pt").items()}
            if prompt_names is not None:
                batch["prompt_names"] = [prompt_names[i] for i in index]
            logits = _logits(runner(**batch)).float().cpu()  # (b, C) or (b, T, C), on the host
            for j, i in enumerate(index):
                rows[i] = logits[j] if logits.dim() == 2 else logits[j, : lengths[i]]
    return rows


def _onednn_wanted(model: nn.Module) -> bool:
    """The model's own ``onednn_linear`` (a wrapper's, or one set on a fine-tuned model), else this CPU's default."""
    wanted = getattr(model, "onednn_linear", None)
    return onednn_default() if wanted is None else bool(wanted)


def _logits(outputs: Any) -> torch.Tensor:
    """A model output's ``logits``; a question-answering head's start and end logits as ``(b, T, 2)``."""
    if getattr(outputs, "start_logits", None) is not None:
        return torch.stack([outputs.start_logits, outputs.end_logits], dim=-1)  # 2 x (b, T) -> (b, T, 2)
    return outputs.logits
