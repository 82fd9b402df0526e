"""Text-to-label classification (Lester et al. 2021): a language model generates the class's word.

Each class has a target string: ``SoftPromptConfig.label_words`` (in class-id order) or else the
class names of the model's ``id2label``. Training teaches the prompt to make the model generate it
(its tokens are the labels); predicting generates greedily, *unconstrained*, and reads the result
by exact match: the text the model generated, special tokens dropped and surrounding whitespace
stripped, is a class's target string or it names no class (reported as such, never mapped to one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from softprompt.task import normalize_id2label

if TYPE_CHECKING:
    from softprompt.predictions import GeneratedPrediction

__all__ = [
    "GREEDY",
    "AutoModelForTextToLabel",
    "generate_words",
    "predict_labels",
    "prompt_targets",
    "target_words",
    "text_to_label_model_class",
    "text_to_label_names",
    "text_to_label_rows",
    "text_to_label_scores",
]

# Plain greedy decoding: the argmax token at every step, which is exactly what training's teacher-forced
# loss teaches. A checkpoint's own generation settings (forced BOS/EOS, a minimum length, repetition
# rules, beams, sampling) would change which word comes out, so each is turned off explicitly.
GREEDY: dict[str, Any] = {
    "do_sample": False, "num_beams": 1, "min_new_tokens": 0, "forced_bos_token_id": None,
    "forced_eos_token_id": None, "no_repeat_ngram_size": 0, "encoder_no_repeat_ngram_size": 0,
    "repetition_penalty": 1.0, "bad_words_ids": None, "suppress_tokens": None, "begin_suppress_tokens": None,
}  # fmt: skip


def text_to_label_model_class(config: Any) -> type:
    """``AutoModelForSeq2SeqLM`` for an encoder-decoder ``config`` (T5, BART), else ``AutoModelForCausalLM``.

    Example:
        >>> text_to_label_model_class(transformers.T5Config()).__name__  # doctest: +SKIP
        'AutoModelForSeq2SeqLM'
    """
    import transformers

    if getattr(config, "is_encoder_decoder", False):
        return transformers.AutoModelForSeq2SeqLM
    return transformers.AutoModelForCausalLM


# from_pretrained arguments that AutoConfig.from_pretrained needs too, to find the same config
_CONFIG_OPTIONS = ("revision", "cache_dir", "token", "local_files_only", "trust_remote_code", "subfolder",
                   "force_download")  # fmt: skip


class AutoModelForTextToLabel:
    """The model class of a text-to-label task: :func:`text_to_label_model_class` of the checkpoint's config.

    ``Task("text-to-label").auto_model_class`` is this class, so code that loads a task's model
    (``data.task.auto_model_class.from_pretrained(name, **data.model_kwargs())``) loads T5 as
    ``AutoModelForSeq2SeqLM`` and GPT-2 as ``AutoModelForCausalLM`` without a branch of its own.

    Example:
        >>> model = AutoModelForTextToLabel.from_pretrained("t5-small", **data.model_kwargs())  # doctest: +SKIP
    """

    @classmethod
    def from_config(cls, config: Any, **kwargs: Any) -> Any:
        return text_to_label_model_class(config).from_config(config, **kwargs)

    @classmethod
    def from_pretrained(cls, name: Any, *args: Any, **kwargs: Any) -> Any:
        import transformers

        config = kwargs.get("config")
        if config is None:
            options = {k: kwargs[k] for k in _CONFIG_OPTIONS if k in kwargs}
            config = transformers.AutoConfig.from_pretrained(name, **options)
        return text_to_label_model_class(config).from_pretrained(name, *args, **kwargs)


def _default_names(names: Mapping[int, str]) -> bool:
    """transformers' placeholder class names (``LABEL_0``, ``LABEL_1``...): no classes were named."""
    return all(name == f"LABEL_{i}" for i, name in names.items())


def text_to_label_names(id2label: Any, label_words: Sequence[str] | None) -> dict[int, str] | None:
    """A language model's class names for text-to-label: its ``id2label`` if it names classes, else
    ``label_words`` numbered in order; ``None`` when neither names classes (plain generation).

    Raises:
        ValueError: ``label_words`` whose count differs from the named classes', or fewer than 2 classes.

    Example:
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

    Example:
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
    slot = wrapper._slot(name)
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

    Example:
        >>> train = text_to_label_rows(wrapper, data.train, max_length=256)  # doctest: +SKIP
    """
    from softprompt.data.targets import tokenize_text_to_label

    words = prompt_targets(wrapper, prompt)
    return tokenize_text_to_label(
        dataset, wrapper.tokenizer, words, decoder_only=wrapper.generation_kind == "causal", max_length=max_length,
        num_virtual_tokens=wrapper._slot(prompt).config.num_virtual_tokens,
    )  # fmt: skip


def generate_words(
    wrapper: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, *, prompt: str | None, budget: int
) -> tuple[list[str], torch.Tensor]:
    """Greedy generation (:data:`GREEDY`) of at most ``budget`` tokens: each row's text and log-probability.

    The text is the generated tokens before the first EOS, decoded without special tokens and
    stripped; the log-probability sums the model's log-softmax of each generated token up to and
    including that EOS (the probability of the whole generated word, end included).
    """
    tokenizer = wrapper.tokenizer
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    out = wrapper.generate(
        input_ids, attention_mask, prompt=prompt, max_new_tokens=budget, eos_token_id=eos, pad_token_id=pad,
        return_dict_in_generate=True, output_logits=True, **GREEDY,
    )  # fmt: skip
    steps = len(out.logits)
    new = out.sequences[:, -steps:]  # (B, G): the generated tokens, after a seq2seq start or the inputs
    logits = torch.stack(out.logits, dim=1).float()  # (B, G, V), before any processing
    chosen = logits.log_softmax(-1).gather(2, new.unsqueeze(-1)).squeeze(-1)  # (B, G)
    is_eos = (new == eos).long()
    after_eos = (is_eos.cumsum(1) - is_eos) > 0  # (B, G): steps after the first EOS (padding)
    log_probs = chosen.masked_fill(after_eos, 0.0).sum(1)  # (B,)
    texts = []
    for row, done in zip(new.tolist(), after_eos.tolist()):
        kept = [t for t, d in zip(row, done) if not d and t != eos]
        texts.append(tokenizer.decode(kept, skip_special_tokens=True).strip())
    return texts, log_probs.cpu()


def predict_labels(
    wrapper: Any,
    texts: Sequence[str],
    *,
    prompt: str | None = None,
    batch_size: int = 32,
    max_length: int | None = None,
    bf16: bool = False,
) -> list[GeneratedPrediction]:
    """Classify ``texts`` by generating each one's class word with a text-to-label prompt.

    Greedy and unconstrained (:data:`GREEDY`): the model may generate any text, at most as many
    tokens as the longest class word has (its EOS included). A generation that is exactly a class
    word gives that class; any other text gives ``label=None`` and ``label_name=None``, with the text
    kept in ``text``: it is never mapped to the nearest class. ``confidence`` is the probability of
    the generated tokens (EOS included).

    Args:
        wrapper: A :class:`~softprompt.SoftPromptWrapper` of a language model, with its tokenizer.
        texts: Strings (one text each; join pairs into one text).
        prompt: The prompt (default: the active one).
        batch_size: Texts per ``generate`` call (sorted by length, so batches pad little).
        max_length: As for :func:`softprompt.data.targets.input_room` (texts are cut to fit).
        bf16: Hold the frozen backbone in bf16 from now on (``wrapper.cast_backbone``), as ``predict_logits`` does.

    Raises:
        TypeError: ``texts`` is not a list of strings.
        ValueError: not a text-to-label prompt, no tokenizer, or class words the tokenizer cannot reproduce.

    Example:
        >>> predict_labels(wrapper, ["A superb film."])  # doctest: +SKIP
        [GeneratedPrediction(label=1, label_name='positive', confidence=0.91, text='positive')]
    """
    from softprompt.data.targets import encode_targets, input_room
    from softprompt.inference import length_batches
    from softprompt.predictions import GeneratedPrediction

    if not hasattr(wrapper, "generate") or not hasattr(wrapper, "prompt_config"):
        raise TypeError(f"text-to-label predicts with a SoftPromptWrapper, got {type(wrapper).__name__}")
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("text-to-label predicts from a list of strings (join a pair into one text)")
    if wrapper.tokenizer is None:
        raise ValueError("predict() needs a tokenizer: pass tokenizer=... to SoftPromptWrapper")
    name = wrapper.active_prompt if prompt is None else prompt  # fixed for the whole call
    slot = wrapper._slot(name)
    words = prompt_targets(wrapper, name)
    decoder_only = wrapper.generation_kind == "causal"
    targets = encode_targets(wrapper.tokenizer, words, decoder_only=decoder_only)
    n = slot.config.num_virtual_tokens
    room = input_room(wrapper.tokenizer, max_length, n, targets, decoder_only=decoder_only)
    encoded = wrapper.tokenizer(list(texts), truncation=True, max_length=room)
    budget = max(len(t) for t in targets)
    index = {w: i for i, w in enumerate(words)}
    out: list[GeneratedPrediction | None] = [None] * len(texts)
    if bf16 and wrapper.backbone_dtype != torch.bfloat16:
        wrapper.cast_backbone(torch.bfloat16)
    was_training = wrapper.training
    wrapper.eval()
    try:
        for rows in length_batches([len(ids) for ids in encoded["input_ids"]], batch_size):
            features = [{"input_ids": encoded["input_ids"][i]} for i in rows]
            batch = wrapper.tokenizer.pad(features, return_tensors="pt").to(wrapper.device)
            generated, log_probs = generate_words(
                wrapper, batch["input_ids"], batch["attention_mask"], prompt=name, budget=budget
            )
            for i, text, log_prob in zip(rows, generated, log_probs.tolist()):
                label = index.get(text)
                label_name = None if label is None else slot.id2label[label]
                out[i] = GeneratedPrediction(label, label_name, float(np.exp(log_prob)), text)  # type: ignore[arg-type]
    finally:
        wrapper.train(was_training)
    return out  # type: ignore[return-value]


def text_to_label_scores(
    predicted: Sequence[int | None], references: Sequence[int], num_classes: int
) -> dict[str, float]:
    """Exact-match accuracy, macro F1 over the ``num_classes`` classes, and the share of generations naming no class.

    A generation that names no class (``None``) is wrong for its text's class (a false negative of
    it) and a false positive of no class.

    Example:
        >>> text_to_label_scores([0, 1, None, 1], [0, 1, 1, 0], 2)
        {'accuracy': 0.5, 'f1': 0.5833333333333333, 'unknown': 0.25}
    """
    if len(predicted) != len(references) or not references:
        raise ValueError(
            f"{len(predicted)} predictions for {len(references)} references; need one each, at least one"
        )
    pred = np.asarray([-1 if p is None else int(p) for p in predicted])
    gold = np.asarray([int(r) for r in references])
    f1s = []
    for k in range(num_classes):
        tp = int(np.sum((pred == k) & (gold == k)))
        wrong = int(np.sum((pred == k) != (gold == k)))  # false positives + false negatives
        f1s.append(2 * tp / (2 * tp + wrong) if tp + wrong else 0.0)
    return {
        "accuracy": float(np.mean(pred == gold)),
        "f1": float(np.mean(f1s)),
        "unknown": float(np.mean(pred == -1)),
    }
