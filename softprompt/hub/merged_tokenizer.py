"""The tokenizer of a merged export: the base tokenizer plus K prompt tokens that its post-processor inserts.

A merged export (:mod:`softprompt.hub.merged`) writes a prompt into the model as K new vocabulary
entries, ``<softprompt_0> .. <softprompt_{K-1}>``. This module makes the tokenizer put them where
the wrapper splices the prompt, for single texts and pairs alike::

    base tokenizer      [CLS] great film [SEP]                      (template "[CLS] $A [SEP]")
    merged tokenizer    [CLS] <softprompt_0> <softprompt_1> great film [SEP]

The base tokenizer's template is read off what it does (which positions are special, which text
they belong to, their segment ids), not from its class, so any fast tokenizer works; byte-level
offset trimming (GPT-2, RoBERTa) is kept in front of the new template. The prompt tokens take the
segment of their left neighbour (of the first token when they come first), as the wrapper gives
them. The result is checked on sample texts before it is returned: ids, segments and the room left
for text must be the base tokenizer's with the prompt tokens inserted, or the export is refused.

Because the prompt tokens are part of the template, ``truncation=True`` with ``max_length=L``
keeps ``L - K`` tokens of text and special tokens, which is exactly what the wrapper's
:meth:`~softprompt.SoftPromptWrapper.tokenize` keeps for a model of ``L`` positions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import torch

from softprompt.models import layout

__all__ = ["PROMPT_TOKEN", "merged_tokenizer", "prompt_tokens"]

PROMPT_TOKEN = "<softprompt_{}>"  # the K vocabulary entries of a merged prompt
_FILLER_TOKEN = "<softprompt_unused_{}>"  # model rows the base tokenizer never names, kept unused
_SAMPLES = ("a", "the film was great", "x y z")  # texts the merged template is checked on
_OFFSET_PROCESSORS = {"ByteLevel"}  # post-processors that only trim offsets: kept before the template


def prompt_tokens(n: int) -> list[str]:
    """The names of ``n`` merged prompt tokens.

    Examples:
        >>> prompt_tokens(2)
        ['<softprompt_0>', '<softprompt_1>']
    """
    return [PROMPT_TOKEN.format(i) for i in range(n)]


def _column(encoding: Any, special_ids: set[int], after_cls: bool) -> int:
    """Where the wrapper puts the prompt in this encoding's row: :func:`softprompt.models.layout.insert_at`'s rule."""
    return layout.insert_at(torch.tensor([encoding.ids[:1]]), special_ids, after_cls)


def _template(encoding: Any, at: int, names: list[str]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """A ``TemplateProcessing`` piece list for one encoding, with ``names`` inserted before column ``at``.

    Raises:
        ValueError: a text's tokens are not one contiguous run (a post-processor that is not a template).
    """
    pieces: list[dict[str, Any]] = []
    specials: dict[str, int] = {}
    seen: set[int] = set()
    previous: int | None = -1
    for token, token_id, seq, type_id in zip(
        encoding.tokens, encoding.ids, encoding.sequence_ids, encoding.type_ids
    ):
        if seq is None:
            pieces.append({"SpecialToken": {"id": token, "type_id": type_id}})
            specials[token] = token_id
        elif seq != previous:
            if seq in seen:
                raise ValueError(
                    "the tokenizer's post-processor splits a text around special tokens; a merged export needs a "
                    "template-like post-processor ([CLS] $A [SEP], <s> $A, ...)"
                )
            seen.add(seq)
            pieces.append({"Sequence": {"id": "AB"[seq], "type_id": type_id}})
        previous = seq
    neighbour = encoding.type_ids[at - 1] if at > 0 else (encoding.type_ids[0] if encoding.type_ids else 0)
    prompt = [{"SpecialToken": {"id": name, "type_id": neighbour}} for name in names]
    # the template's piece at column `at`: every piece before it is one token, as `at` is 0 or 1
    return pieces[:at] + prompt + pieces[at:], specials


def _post_processor(
    original: dict[str, Any] | None, single: list, pair: list, specials: dict[str, int]
) -> dict:
    """The merged post-processor: the original's offset trimming (if any), then the new template."""
    template = {
        "type": "TemplateProcessing",
        "single": single,
        "pair": pair,
        "special_tokens": {tok: {"id": tok, "ids": [i], "tokens": [tok]} for tok, i in specials.items()},
    }
    keep: list[dict[str, Any]] = []
    members = (original.get("processors", []) if original and original.get("type") == "Sequence"
               else [original] if original else [])  # fmt: skip
    for member in members:
        if member.get("type") in _OFFSET_PROCESSORS:
            keep.append(member)
        elif member.get("type") == "RobertaProcessing" and member.get("trim_offsets", False):
            keep.append({"type": "ByteLevel", "add_prefix_space": bool(member.get("add_prefix_space", True)),
                         "trim_offsets": True, "use_regex": True})  # fmt: skip
    return {"type": "Sequence", "processors": [*keep, template]} if keep else template


def merged_tokenizer(
    tokenizer: Any, *, num_virtual: int, first_id: int, special_ids: Iterable[int], after_cls: bool
) -> tuple[Any, int]:
    """A copy of ``tokenizer`` whose every encoding holds the ``num_virtual`` prompt tokens where the wrapper puts them.

    Args:
        tokenizer: The wrapper's fast (``tokenizers``-backed) tokenizer; it is not changed.
        num_virtual: ``K``, the prompt's length.
        first_id: Id of the first prompt token: the model's embedding rows before the export (rows the
            tokenizer does not name get unused filler tokens, so ids and rows line up).
        special_ids: Ids after which the wrapper puts the prompt ([CLS], BOS).
        after_cls: The prompt's ``placement`` is ``after_cls``.

    Returns:
        ``(tokenizer, at)``: a ``PreTrainedTokenizerFast`` (loadable by ``AutoTokenizer`` without softprompt)
        and the column the prompt tokens go to (0 or 1).

    Raises:
        ValueError: a tokenizer without a ``tokenizers`` backend, one that already names more tokens than
            the model has rows or already has prompt tokens, or whose merged encodings would not be the
            wrapper's (checked on sample texts).

    Examples:
        >>> merged, at = merged_tokenizer(tok, num_virtual=2, first_id=30522, special_ids={101}, after_cls=True)  # doctest: +SKIP
        >>> merged.convert_ids_to_tokens(merged("great film")["input_ids"])  # doctest: +SKIP
        ['[CLS]', '<softprompt_0>', '<softprompt_1>', 'great', 'film', '[SEP]']
    """
    import tokenizers
    import transformers

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if not getattr(tokenizer, "is_fast", False) or backend is None:
        raise ValueError(
            f"a merged export needs a fast (tokenizers-backed) tokenizer; {type(tokenizer).__name__} is not one: "
            "load the tokenizer with AutoTokenizer.from_pretrained(..., use_fast=True)"
        )
    special_ids = set(special_ids)
    base = tokenizers.Tokenizer.from_str(backend.to_str())
    base.no_truncation()
    base.no_padding()
    size = base.get_vocab_size(with_added_tokens=True)
    if size > first_id:
        raise ValueError(
            f"the tokenizer names {size} tokens but the model has only {first_id} embedding rows; use the model's own "
            "tokenizer"
        )
    names = prompt_tokens(num_virtual)
    fillers = [_FILLER_TOKEN.format(i) for i in range(first_id - size)]
    taken = [name for name in names + fillers if base.token_to_id(name) is not None]
    if taken:
        raise ValueError(
            f"the tokenizer already has {taken[0]!r}: it was exported from a prompt before; export from the base "
            "model's own tokenizer"
        )
    single_enc, pair_enc = base.encode(_SAMPLES[0]), base.encode(_SAMPLES[0], _SAMPLES[1])
    at, at_pair = _column(single_enc, special_ids, after_cls), _column(pair_enc, special_ids, after_cls)
    if at != at_pair:
        raise ValueError(
            "the tokenizer opens single texts and pairs differently; a merged export cannot place the prompt"
        )
    single, specials = _template(single_enc, at, names)
    pair, pair_specials = _template(pair_enc, at, names)
    specials.update(pair_specials)
    spec = json.loads(base.to_str())
    spec["added_tokens"] = list(spec.get("added_tokens") or []) + [
        {"id": size + i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for i, content in enumerate(fillers + names)
    ]  # fmt: skip
    specials.update({name: first_id + i for i, name in enumerate(names)})
    spec["post_processor"] = _post_processor(spec.get("post_processor"), single, pair, specials)
    merged = tokenizers.Tokenizer.from_str(json.dumps(spec))
    ids = [merged.token_to_id(name) for name in names]
    if ids != list(range(first_id, first_id + num_virtual)):
        raise ValueError(f"the prompt tokens got ids {ids[:3]}..., not {first_id}.. (the model's new rows)")
    _check(base, merged, ids, at)
    # the generic class: AutoTokenizer loads it as it is, and no class-specific code rebuilds the template
    out = transformers.PreTrainedTokenizerFast(
        tokenizer_object=merged,
        model_max_length=tokenizer.model_max_length,
        padding_side=tokenizer.padding_side,
        truncation_side=tokenizer.truncation_side,
        model_input_names=list(tokenizer.model_input_names),
        **_special_tokens(tokenizer),
    )
    if getattr(tokenizer, "chat_template", None):
        out.chat_template = tokenizer.chat_template
    return out, at


def _special_tokens(tokenizer: Any) -> dict[str, str]:
    """The named special tokens of ``tokenizer`` (``cls_token``, ``pad_token``...) as strings."""
    out = {}
    for attr in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            out[attr] = str(value)
    return out


def _check(base: Any, merged: Any, prompt_ids: list[int], at: int) -> None:
    """The merged tokenizer gives the base encodings with the prompt ids inserted at ``at`` (ids and segments)."""
    for first in _SAMPLES:
        for encoded, expected in (
            (merged.encode(first), base.encode(first)),
            (merged.encode(first, _SAMPLES[1]), base.encode(first, _SAMPLES[1])),
        ):
            want = expected.ids[:at] + prompt_ids + expected.ids[at:]
            neighbour = expected.type_ids[at - 1] if at > 0 else expected.type_ids[0]
            want_types = expected.type_ids[:at] + [neighbour] * len(prompt_ids) + expected.type_ids[at:]
            if encoded.ids != want or encoded.type_ids != want_types:
                raise ValueError(
                    "the merged tokenizer would not insert the prompt where the wrapper does "
                    f"({encoded.ids} vs {want}); this tokenizer's post-processor cannot be merged"
                )
