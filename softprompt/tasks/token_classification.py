"""The token-classification family (NER): one tag per word, padded per token, scored entity by entity.

Labels are one tag id per token (``IGNORE_INDEX`` on sub-word continuations, special tokens and
padding), padded by ``DataCollatorForTokenClassification`` and scored with seqeval; prediction reads
each word at its first sub-word (:mod:`softprompt.tasks.entities`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from torch import nn

from softprompt.core.constants import IGNORE_INDEX
from softprompt.core.task import Task, TaskType
from softprompt.data.tags import checked_tag_names
from softprompt.metrics.tokens import tag_sequence_scores, token_classification_scores
from softprompt.tasks.base import Call, Labels, Metrics, TaskFamily
from softprompt.tasks.entities import predict_entities, validate_word_inputs, word_logits

if TYPE_CHECKING:
    import datasets
    from transformers import PreTrainedTokenizerBase

__all__ = ["TokenClassification", "check_token_labels"]


def check_token_labels(dataset: datasets.Dataset | None, name: str, num_labels: int | None) -> None:
    """Token labels fit the head: one label per token, each ``IGNORE_INDEX`` or a tag id in ``[0, num_labels)``.

    Raises:
        ValueError: the first misfit, naming ``name`` and the fix.

    Examples:
        >>> import datasets
        >>> ds = datasets.Dataset.from_dict({"input_ids": [[2, 9, 3]], "labels": [[-100, 1, -100]]})
        >>> check_token_labels(ds, "train_dataset", 3)
    """
    if dataset is None or "labels" not in dataset.column_names:
        return
    labels = dataset.data.column("labels")
    kind = labels.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)) or not pa.types.is_integer(
        kind.value_type
    ):
        raise ValueError(
            f"{name}: a token-classification head needs one list of integer labels per row, got {kind}; tokenize "
            "token data (load_data(..., task='token-classification')) with softprompt.tokenize_dataset"
        )
    lengths = pc.list_value_length(labels).to_numpy(zero_copy_only=False)
    tokens = pc.list_value_length(dataset.data.column("input_ids")).to_numpy(zero_copy_only=False)
    bad_rows = np.flatnonzero(lengths != tokens)
    if bad_rows.size:
        row = int(bad_rows[0])
        raise ValueError(
            f"{name}: row {row} has {int(lengths[row])} labels for {int(tokens[row])} tokens; token labels must be "
            "aligned to the tokens (softprompt.tokenize_dataset does it)"
        )
    values = pc.list_flatten(labels).to_numpy(zero_copy_only=False)
    real = values[values != IGNORE_INDEX]
    if real.size == 0:
        raise ValueError(f"{name}: every token label is {IGNORE_INDEX}; there is nothing to train or score")
    low, high = int(real.min()), int(real.max())
    if low < 0 or high >= (num_labels or 0):
        raise ValueError(
            f"{name} has tag ids {low}..{high} but the model has num_labels={num_labels}; load the model with the "
            "data's tags (from_pretrained(..., **data.model_kwargs()))"
        )


class TokenClassification(TaskFamily):
    """Token classification: a tag per word (read at its first sub-word), entities grouped from IOB tags.

    Examples:
        >>> type(TokenClassification().collator(tok)).__name__  # doctest: +SKIP
        'DataCollatorForTokenClassification'
    """

    name: ClassVar[str] = "token-classification"
    task_types: ClassVar[tuple[TaskType, ...]] = (TaskType.TOKEN_CLASSIFICATION,)
    eval_columns: ClassVar[tuple[str, ...]] = ("tokens", "tags")
    example_call: ClassVar[str] = (
        'print(wrapper.predict(["Ada Lovelace lived in London ."]))  # entities with character offsets'
    )

    def check_labels(
        self, dataset: datasets.Dataset | None, name: str, task: Task | None, num_labels: int | None
    ) -> None:
        """Check each row's tag ids fit the head's tags (``-100``: not scored)."""
        check_token_labels(dataset, name, num_labels)

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Callable[[list[dict[str, Any]]], Any]:
        """Pads inputs and per-token labels (``-100`` on padding)."""
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(
            tokenizer, padding="longest", label_pad_token_id=IGNORE_INDEX
        )

    def trainer_metrics(
        self, task: Task, id2label: Labels, *, eval_dataset: Any = None, tokenizer: Any = None
    ) -> Metrics:
        """Entity-level precision, recall and F1 (seqeval) and word accuracy of each evaluation."""
        names = checked_tag_names(id2label)  # before training: entity scores need IOB-style names

        def compute_task(eval_pred: Any) -> dict[str, float]:
            return token_classification_scores(eval_pred.predictions, eval_pred.label_ids, names)

        return compute_task

    def score(
        self, task: Task, predictions: Any, references: Any, id2label: Mapping[int, str] | None = None
    ) -> dict[str, float]:
        """Entity-level scores of ``(N, T, C)`` logits against tag ids (``-100``: not scored)."""
        return token_classification_scores(predictions, references, checked_tag_names(id2label))

    def predict(self, model: nn.Module, tokenizer: Any, texts: Sequence[Any], call: Call) -> list[Any]:
        """Each text's :class:`~softprompt.Entity` spans (words tagged at their first sub-word)."""
        names = call.prompt_names(len(validate_word_inputs(texts)[0]) if call.prompt is not None else 0)
        return predict_entities(
            model, tokenizer, texts, id2label=call.id2label, prompt_names=names, **call.batching
        )

    def evaluate(
        self, model: nn.Module, tokenizer: Any, dataset: datasets.Dataset, call: Call
    ) -> dict[str, float]:
        """seqeval scores of each row's predicted tags against ``tags``, on the words that fit ``max_length``."""

        def run() -> dict[str, float]:
            names = checked_tag_names(call.id2label)
            predicted, expected = [], []
            rows = word_logits(model, tokenizer, dataset["tokens"], **call.batching)
            for (index, logits), tags in zip(rows, dataset["tags"]):
                predicted.append([names[int(i)] for i in logits.argmax(dim=-1).tolist()])
                expected.append([names[int(tags[w])] for w in index])
            return tag_sequence_scores(predicted, expected)

        return self.timed(run, len(dataset))
