"""Where prompts (and new heads) are initialised: random, vocab, text and labels (Lester et al. 2021,
section 3.2); :func:`zero_head_output` for a head the checkpoint lacks.

Every strategy is seeded by ``SoftPromptConfig.seed`` and returns an fp32 ``(num_virtual_tokens, E)``
tensor in the model's *input embedding* space (E = embedding size, which differs from the hidden
size on ALBERT and ELECTRA).
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterable, Mapping

import torch

from softprompt.core.config import PromptInit, SoftPromptConfig
from softprompt.models.heads import head_children

__all__ = ["head_output_layer", "initial_prompt", "vocab_pool", "zero_head_output"]

logger = logging.getLogger(__name__)

# transformers' default names when a model was built with num_labels but no label names
_PLACEHOLDER_LABEL = re.compile(r"^LABEL_\d+$")
# reserved slots in WordPiece/SentencePiece vocabularies that were never trained
_UNUSED_TOKEN = re.compile(r"^[\[<]unused\d*[\]>]$")


def vocab_pool(
    vocab_size: int, sample_size: int, special_ids: Iterable[int] = (), tokenizer: object | None = None
) -> torch.Tensor:
    """Ids of the first ``sample_size`` ordinary tokens (specials and ``[unused*]`` slots removed).

    Examples:
        >>> vocab_pool(10, 3, special_ids=[0, 1]).tolist()
        [2, 3, 4]
    """
    excluded = set(int(i) for i in special_ids)
    if tokenizer is not None:
        excluded.update(int(i) for i in getattr(tokenizer, "all_special_ids", []) or [])
        convert = getattr(tokenizer, "convert_ids_to_tokens", None)
    else:
        convert = None
    pool: list[int] = []
    for token_id in range(vocab_size):
        if token_id in excluded:
            continue
        if convert is not None:
            piece = convert(token_id)
            if piece is None or _UNUSED_TOKEN.match(str(piece)):
                continue
        pool.append(token_id)
        if len(pool) == sample_size:
            break
    if not pool:
        raise ValueError(
            f"no ordinary tokens left in a vocabulary of {vocab_size} after removing special tokens"
        )
    return torch.tensor(pool, dtype=torch.long)


def _word_ids(tokenizer: object, text: str) -> list[int]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
    return [int(i) for i in ids]


def _need_tokenizer(tokenizer: object | None, init: PromptInit) -> None:
    if tokenizer is None:
        raise ValueError(
            f"SoftPromptConfig(init={init.value!r}) needs a tokenizer: pass tokenizer=... to SoftPromptWrapper"
        )


def initial_prompt(
    config: SoftPromptConfig,
    embedding_weight: torch.Tensor,
    *,
    tokenizer: object | None = None,
    id2label: Mapping[int, str] | None = None,
    special_ids: Iterable[int] = (),
) -> torch.Tensor:
    """Build the initial prompt for ``config`` from the model's input embedding matrix.

    Args:
        config: The prompt's config (``init``, ``num_virtual_tokens``, ``seed``, ...).
        embedding_weight: ``(V, E)`` input embedding matrix of the model.
        tokenizer: Needed for ``text`` and ``labels``; improves the ``vocab`` pool.
        id2label: Class names for ``labels`` when ``config.label_words`` is not set.
        special_ids: Token ids never sampled by ``vocab`` (pad, cls, sep, ...).

    Returns:
        ``(num_virtual_tokens, E)`` fp32 tensor.

    Raises:
        ValueError: ``text``/``labels`` without a tokenizer, words that tokenize to nothing, or
            ``init="prompt"`` (built by the wrapper, which checks the files against the model).

    Examples:
        >>> w = torch.randn(100, 8)
        >>> initial_prompt(SoftPromptConfig(num_virtual_tokens=4, init="random"), w).shape
        torch.Size([4, 8])
    """
    if config.init is PromptInit.PROMPT:
        raise ValueError(
            "init='prompt' starts from trained prompt files, which must be checked against the model: "
            "SoftPromptWrapper(model, config) reads config.init_from (see softprompt.models.transfer)"
        )
    n = config.num_virtual_tokens
    weight = embedding_weight.detach().float()  # (V, E)
    gen = torch.Generator().manual_seed(config.seed)

    def sample_vocab(count: int) -> torch.Tensor:  # (count, E)
        pool = vocab_pool(weight.shape[0], config.vocab_sample_size, special_ids, tokenizer)
        picks = torch.randint(len(pool), (count,), generator=gen)
        return weight[pool[picks]].clone()

    if config.init is PromptInit.RANDOM:
        # match the embedding matrix's own per-dimension statistics, not N(0, 1): BERT's embeddings
        # have std ~0.05, so N(0, 1) vectors would be ~20x larger than any real token
        mean, std = weight.mean(0), weight.std(0)  # (E,), (E,)
        return mean + std * torch.randn(n, weight.shape[1], generator=gen)

    if config.init is PromptInit.VOCAB:
        return sample_vocab(n)

    if config.init is PromptInit.TEXT:
        _need_tokenizer(tokenizer, config.init)
        ids = _word_ids(tokenizer, config.init_text or "")
        if not ids:
            raise ValueError(f"init_text={config.init_text!r} tokenizes to no tokens")
        tiled = (ids * (n // len(ids) + 1))[:n]  # tile short texts, cut long ones
        return weight[torch.tensor(tiled)].clone()

    # PromptInit.LABELS: one vector per class (mean of its word pieces), rest like `vocab`
    _need_tokenizer(tokenizer, config.init)
    words = list(config.label_words) if config.label_words else [id2label[i] for i in sorted(id2label or {})]
    if not words:
        raise ValueError(
            "init='labels' needs class names: set SoftPromptConfig.label_words or the model's id2label"
        )
    rows: list[torch.Tensor] = []
    placeholders = [w for w in words if _PLACEHOLDER_LABEL.match(w)]
    if placeholders:
        warnings.warn(
            f"init='labels': the model's labels are placeholders {placeholders} (no id2label names were given); "
            "those rows are initialised like init='vocab'. Pass label_words=['negative', 'positive'] "
            "(or id2label when loading the model) to use real class words.",
            UserWarning,
            stacklevel=3,
        )
    for word in words[:n]:
        if _PLACEHOLDER_LABEL.match(word):
            rows.append(sample_vocab(1)[0])
            continue
        ids = _word_ids(tokenizer, word)
        if not ids:
            raise ValueError(f"label word {word!r} tokenizes to no tokens")
        rows.append(weight[torch.tensor(ids)].mean(0))
    if len(words) > n:
        logger.warning("init='labels': %d labels but %d virtual tokens; using the first %d", len(words), n, n)
    prompt = torch.stack(rows)  # (min(L, n), E)
    if prompt.shape[0] < n:
        prompt = torch.cat([prompt, sample_vocab(n - prompt.shape[0])])
    return prompt


def head_output_layer(model: torch.nn.Module, num_labels: int) -> str:
    """Name of the head's output layer: the one ``nn.Linear`` outside the backbone with ``num_labels`` outputs.

    ``BertForSequenceClassification`` gives ``"classifier"``, RoBERTa's ``"classifier.out_proj"``.

    Raises:
        ValueError: no such layer, or more than one (the head's shape is not the usual one).
    """
    found = [
        f"{child}.{name}" if name else child
        for child in head_children(model)
        for name, module in getattr(model, child).named_modules()
        if isinstance(module, torch.nn.Linear) and module.out_features == num_labels
    ]
    if len(found) != 1:
        raise ValueError(
            f"{type(model).__name__}: cannot tell the head's output layer (linear layers with {num_labels} "
            f"outputs outside the backbone: {found or 'none'}); initialise the head yourself"
        )
    return found[0]


def zero_head_output(model: torch.nn.Module, num_labels: int) -> str:
    """Set the head's output layer (weight and bias) to zero, in place; returns its name.

    A zero output layer starts every class at logit 0 (a uniform prediction) and makes the start of
    training independent of the random draw of a new head. Gradients still reach it at once
    (``dL/dW = error x features``), and reach the prompt from the second step.

    Examples:
        >>> from transformers import BertConfig, BertForSequenceClassification
        >>> m = BertForSequenceClassification(BertConfig(hidden_size=8, num_hidden_layers=1,
        ...     num_attention_heads=2, intermediate_size=8, vocab_size=20))
        >>> zero_head_output(m, 2), float(m.classifier.weight.abs().sum())
        ('classifier', 0.0)
    """
    name = head_output_layer(model, num_labels)
    layer = model.get_submodule(name)
    with torch.no_grad():
        layer.weight.zero_()
        if layer.bias is not None:
            layer.bias.zero_()
    return name
