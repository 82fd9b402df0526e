"""A language model's classes as words: the class names a text-to-label prompt generates, and its training rows.

Each class has a target string: ``SoftPromptConfig.label_words`` (in class-id order) or else the
class names of the model's ``id2label``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from softprompt.core.task import normalize_id2label

__all__ = ["prompt_targets", "target_words", "text_to_label_names", "text_to_label_rows"]


def _default_names(names: Mapping[int, str]) -> bool:
    """transformers' placeholder class names (``LABEL_0``, ``LABEL_1``...): no classes were named."""
    return all(name == f"LABEL_{i}" for i, name in names.items())


def text_to_label_names(id2label: Any, label_words: Sequence[str] | None) -> dict[int, str] | None:
    """A language model's class names for text-to-label: its ``id2label`` if it names classes, else
    ``label_words`` numbered in order; ``None`` when neither names classes (plain generation).

    Raises:
        ValueError: ``label_words`` whose count differs from the named classes', or fewer than 2 classes.

    Examples:
        >>> text_to_label_names({0: "LABEL_0", 1: "LABEL_1"}, None) is None
        True
        >>> text_to_label_names({0: "LABEL_0", 1: "LABEL_1"}, ["no", "yes"])
        {0: 'no', 1: 'yes'}
    """
    names = normalize_id2label(id2label)
    named = bool(names) and not _default_names(names)
    if label_words is not None and named and len(label_words) != len(names):
        raise ValueError(
            f"label_words {list(label_words)} has {len(label_words)} words but the model's id2label names "
            f"{len(names)} classes {names}; give one word per class, in class-id order"
        )
    if not named:
        names = dict(enumerate(label_words)) if label_words is not None else {}
    if not names:
        return None
    if sorted(names) != list(range(len(names))) or len(names) < 2:
        raise ValueError(f"text-to-label needs class ids 0..K-1 with K >= 2, got id2label {names}")
    return names


def target_words(id2label: Mapping[int, str], label_words: Sequence[str] | None) -> list[str]:
    """Each class's target string, in class-id order: ``label_words`` if given, else the class names.

    Examples:
        >>> target_words({0: "neg", 1: "pos"}, None), target_words({0: "neg", 1: "pos"}, ["bad", "good"])
        (['neg', 'pos'], ['bad', 'good'])
    """
    words = list(label_words) if label_words is not None else [id2label[i] for i in range(len(id2label))]
    if len(words) != len(id2label):
        raise ValueError(f"{len(words)} label words for {len(id2label)} classes {dict(id2label)}")
    stripped = [w.strip() for w in words]
    if any(not w for w in stripped) or len(set(stripped)) != len(stripped):
        raise ValueError(f"text-to-label targets must be distinct non-empty strings, got {words}")
    return stripped


def prompt_targets(wrapper: Any, name: str | None = None) -> list[str]:
    """A text-to-label prompt's class words (:func:`target_words` of its labels and ``label_words``).

    Raises:
        ValueError: the prompt is not a text-to-label prompt.
    """
    slot = wrapper.slot(name)
    if slot.task is None or not slot.task.is_text_to_label:
        kind = "no task" if slot.task is None else slot.task.type.value
        raise ValueError(
            f"prompt {name or wrapper.active_prompt!r} is not a text-to-label prompt ({kind}), so it has no classes to "
            "predict; a language model's prompt without classes generates text: wrapper.generate(...)"
        )
    return target_words(slot.id2label, slot.config.label_words)


def text_to_label_rows(
    wrapper: Any, dataset: Any, *, max_length: int | None = None, prompt: str | None = None
) -> Any:
    """:func:`softprompt.tokenize_text_to_label` of ``dataset`` for a wrapper's text-to-label prompt: its class
    words, its model's layout (causal or seq2seq) and its number of virtual tokens.

    Raises:
        ValueError: the prompt is not text-to-label; see :func:`softprompt.tokenize_text_to_label`.

    Examples:
        >>> train = text_to_label_rows(wrapper, data.train, max_length=256)  # doctest: +SKIP
    """
    from softprompt.data.targets import tokenize_text_to_label

    words = prompt_targets(wrapper, prompt)
    return tokenize_text_to_label(
        dataset, wrapper.tokenizer, words, decoder_only=wrapper.generation_kind == "causal", max_length=max_length,
        num_virtual_tokens=wrapper.slot(prompt).config.num_virtual_tokens,
    )  # fmt: skip
