"""Text-to-label classification (Lester et al. 2021): a language model generates the class's word.

Training teaches the prompt to make the model generate its class word (its tokens are the labels,
padded by ``DataCollatorForSeq2Seq``); predicting generates greedily, *unconstrained*, and reads the
result by exact match: the text the model generated, special tokens dropped and surrounding whitespace
stripped, is a class's target string or it names no class (reported as such, never mapped to one).
Every evaluation during training generates the same way (:meth:`TextToLabel.eval_predictor`), so an
epoch's accuracy is the accuracy ``predict`` and ``evaluate_model`` give for the same prompt and rows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa
import torch

from softprompt.core.constants import IGNORE_INDEX
from softprompt.core.predictions import GeneratedPrediction
from softprompt.core.protocols import is_prompted
from softprompt.core.task import Task, TaskType
from softprompt.data.targets import encode_targets, input_room
from softprompt.engine.logits import length_batches
from softprompt.metrics.scores import text_to_label_scores
from softprompt.models.modes import eval_mode
from softprompt.tasks.base import Call, EvalPredictor, Labels, Metrics, TaskFamily
from softprompt.tasks.label_words import prompt_targets, text_to_label_rows

if TYPE_CHECKING:
    import datasets
    from torch import nn
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "GREEDY",
    "TextToLabel",
    "check_target_labels",
    "generate_words",
    "predict_labels",
    "prompt_inputs",
]

# Plain greedy decoding: the argmax token at every step, which is exactly what training's teacher-forced
# loss teaches. A checkpoint's own generation settings (forced BOS/EOS, a minimum length, repetition
# rules, beams, sampling) would change which word comes out, so each is turned off explicitly.
GREEDY: dict[str, Any] = {
    "do_sample": False, "num_beams": 1, "min_new_tokens": 0, "forced_bos_token_id": None,
    "forced_eos_token_id": None, "no_repeat_ngram_size": 0, "encoder_no_repeat_ngram_size": 0,
    "repetition_penalty": 1.0, "bad_words_ids": None, "suppress_tokens": None, "begin_suppress_tokens": None,
}  # fmt: skip


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

    Examples:
        >>> predict_labels(wrapper, ["A superb film."])  # doctest: +SKIP
        [GeneratedPrediction(label=1, label_name='positive', confidence=0.91, text='positive')]
    """
    if not is_prompted(wrapper) or not wrapper.can_generate():
        raise TypeError(f"text-to-label predicts with a SoftPromptWrapper, got {type(wrapper).__name__}")
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("text-to-label predicts from a list of strings (join a pair into one text)")
    if wrapper.tokenizer is None:
        raise ValueError("predict() needs a tokenizer: pass tokenizer=... to SoftPromptWrapper")
    name = wrapper.active_prompt if prompt is None else prompt  # fixed for the whole call
    slot = wrapper.slot(name)
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
    with eval_mode(wrapper):  # dropout off; each module's own mode back afterwards
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
    return out  # type: ignore[return-value]


def check_target_labels(dataset: datasets.Dataset | None, name: str) -> None:
    """Text-to-label rows carry their target's token ids: a list of integer labels with at least one that is not -100.

    Raises:
        ValueError: the first misfit, naming ``name`` and the fix.

    Examples:
        >>> import datasets
        >>> check_target_labels(datasets.Dataset.from_dict({"input_ids": [[5, 6]], "labels": [[9, 1]]}), "train_dataset")
    """
    if dataset is None:
        return
    labels = dataset.data.column("labels")
    kind = labels.type
    lists = pa.types.is_list(kind) or pa.types.is_large_list(kind)
    if not lists or not pa.types.is_integer(kind.value_type):
        raise ValueError(
            f"{name}: text-to-label trains on the token ids of each row's class word, a list of integers per row; got "
            f"{kind}. Tokenize it with softprompt.tokenize_text_to_label"
        )
    for row, ids in enumerate(labels.to_pylist()):
        if all(i == IGNORE_INDEX for i in ids):
            raise ValueError(f"{name}: row {row} has no target token (every label is {IGNORE_INDEX})")


def prompt_inputs(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """A causal LM's training rows ``(B, T)`` without their targets: the input tokens alone, left-padded.

    The input is each row's real tokens whose label is -100 (the target follows them); they are
    moved to the end of the row, padding first, as generation wants them.

    Examples:
        >>> prompt_inputs(torch.tensor([[5, 6, 7, 2, 0]]), torch.tensor([[1, 1, 1, 1, 0]]),
        ...               torch.tensor([[-100, -100, 7, 2, -100]]))
        (tensor([[7, 2, 0, 5, 6]]), tensor([[0, 0, 0, 1, 1]]))
    """
    keep = (attention_mask.bool() & (labels == IGNORE_INDEX)).long()  # (B, T)
    order = torch.sort(keep, dim=1, stable=True).indices  # (B, T): dropped columns first, inputs after
    return input_ids.gather(1, order), keep.gather(1, order)


def _generated_classes(
    words: list[str], classes: dict[tuple[int, ...], int], budget: int, causal: bool,
    wrapper: Any, inputs: dict[str, Any],
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """One evaluation batch: the class whose word each row generates (``-1``: none) and its target's class."""
    ids, mask, labels = inputs["input_ids"], inputs["attention_mask"], inputs["labels"]
    if causal:
        ids, mask = prompt_inputs(ids, mask, labels)
    texts, _ = generate_words(wrapper, ids, mask, prompt=None, budget=budget)
    index = {word: k for k, word in enumerate(words)}
    predicted = torch.tensor([index.get(text, -1) for text in texts], device=labels.device)  # (B,)
    gold = []
    for row in labels.tolist():
        target = tuple(t for t in row if t != IGNORE_INDEX)
        if target not in classes:
            raise ValueError(
                f"an evaluation row's target ids {list(target)} are no class word of this prompt ({words}); "
                "tokenize the evaluation data with the prompt's words (softprompt.tokenize_text_to_label)"
            )
        gold.append(classes[target])
    return predicted, torch.tensor(gold, device=labels.device)  # (B,), (B,)


def _generated_scores(num_classes: int, eval_pred: Any) -> dict[str, float]:
    predicted = [None if int(p) < 0 else int(p) for p in np.asarray(eval_pred.predictions).reshape(-1)]
    return text_to_label_scores(predicted, np.asarray(eval_pred.label_ids).reshape(-1).tolist(), num_classes)


def _generation_batching(call: Call) -> dict[str, Any]:
    """What ``predict_labels`` batches by: rows and length (generation has no token cap or progress bar)."""
    return {k: call.batching[k] for k in ("batch_size", "max_length", "bf16") if k in call.batching}


class TextToLabel(TaskFamily):
    """Classes generated as words by a causal LM or T5/BART; also the family of a language model's prompt
    without classes (whose prediction then explains that it has none: use ``wrapper.generate``).

    Examples:
        >>> TextToLabel().score(Task("text-to-label"), [0, 1, None, 1], [0, 1, 1, 0], {0: "no", 1: "yes"})
        {'accuracy': 0.5, 'f1': 0.5833333333333333, 'unknown': 0.25}
    """

    name: ClassVar[str] = "text-to-label"
    task_types: ClassVar[tuple[TaskType, ...]] = (TaskType.TEXT_TO_LABEL,)

    def check_labels(
        self, dataset: datasets.Dataset | None, name: str, task: Task | None, num_labels: int | None
    ) -> None:
        """Check the tokenized rows carry their target ids (the class words to generate)."""
        check_target_labels(dataset, name)

    def tokenize(
        self, dataset: datasets.Dataset, model: Any, tokenizer: Any, **sizes: Any
    ) -> datasets.Dataset:
        """Each text with its class word as the target, for the wrapper's text-to-label prompt."""
        return text_to_label_rows(model, dataset, max_length=sizes.get("max_length"))

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Callable[[list[dict[str, Any]]], Any]:
        """Pads inputs and target ids (``-100`` on padding), for encoder-decoder and causal models alike."""
        from transformers import (
            DataCollatorForSeq2Seq,  # target ids: a causal LM's as long as its row, T5's not
        )

        return DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=IGNORE_INDEX)

    def trainer_metrics(
        self, task: Task, id2label: Labels, *, eval_dataset: Any = None, tokenizer: Any = None
    ) -> Metrics:
        """Accuracy, macro F1 and the share of outputs naming no class, from the generated words."""
        return functools.partial(_generated_scores, len(id2label or {}))

    def eval_predictor(self, model: Any) -> EvalPredictor:
        """Each evaluation row's generated class and its target's class, for ``Trainer``'s metrics.

        Raises:
            ValueError: the active prompt is not text-to-label, or its words do not survive the tokenizer.
        """
        causal = model.generation_kind == "causal"
        words = prompt_targets(model)
        targets = encode_targets(model.tokenizer, words, decoder_only=causal)
        classes = {tuple(ids): k for k, ids in enumerate(targets)}
        return functools.partial(_generated_classes, words, classes, max(len(ids) for ids in targets), causal)

    def score(
        self, task: Task, predictions: Any, references: Any, id2label: Mapping[int, str] | None = None
    ) -> dict[str, float]:
        """Accuracy, macro F1 and the share naming no class, of generated predictions (or class ids) against labels."""
        if not id2label:
            raise ValueError("text-to-label scores need the class names: pass id2label=")
        predicted = [getattr(p, "label", p) for p in predictions]  # GeneratedPrediction or class ids
        return text_to_label_scores(predicted, [int(r) for r in references], len(id2label))

    def predict(self, model: nn.Module, tokenizer: Any, texts: Sequence[Any], call: Call) -> list[Any]:
        """Generate each text's class word: one :class:`~softprompt.GeneratedPrediction` per text."""
        return predict_labels(model, texts, prompt=call.prompt, **_generation_batching(call))

    def evaluate(
        self, model: nn.Module, tokenizer: Any, dataset: datasets.Dataset, call: Call
    ) -> dict[str, float]:
        """Generate each evaluation row's class word and score it against its label."""

        def run() -> dict[str, float]:
            predicted = predict_labels(model, dataset["text"], **_generation_batching(call))
            return self.score(call.task, predicted, dataset["label"], call.id2label)

        return self.timed(run, len(dataset))
