"""What a task adds to ``Trainer``: the check of its labels, the collator that pads them, and its metrics.

Prompt tuning (:func:`softprompt.train_prompt`) and fine-tuning (:func:`softprompt.finetune.finetune`)
both take their parts from here, so the two paths pad and score every task the same way. Sequence
tasks pad with ``DataCollatorWithPadding``; token classification pads its per-token labels with
``DataCollatorForTokenClassification`` (with ``IGNORE_INDEX``) and scores entities with seqeval. Question
answering pads its windows like sequence tasks (its labels are two positions per window), trains on
``start_positions``/``end_positions`` (``Trainer``'s ``label_names``) and scores the windows' answers.
Text-to-label pads its target ids with ``DataCollatorForSeq2Seq`` (``IGNORE_INDEX``) and is scored by
generating (:mod:`softprompt.text_to_label_training`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from softprompt.layout import IGNORE_INDEX
from softprompt.spans import ANSWER_POSITION_KEYS
from softprompt.training_args import check_labels, padding_collator

if TYPE_CHECKING:
    import datasets
    from transformers import PreTrainedTokenizerBase

    from softprompt.task import Task

__all__ = [
    "check_answer_positions",
    "check_target_labels",
    "check_task_labels",
    "check_token_labels",
    "task_collator",
    "task_compute_metrics",
    "task_training_args",
]


def check_token_labels(dataset: datasets.Dataset | None, name: str, num_labels: int | None) -> None:
    """Token labels fit the head: one label per token, each ``IGNORE_INDEX`` or a tag id in ``[0, num_labels)``.

    Raises:
        ValueError: the first misfit, naming ``name`` and the fix.

    Example:
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


def check_answer_positions(dataset: datasets.Dataset | None, name: str) -> None:
    """Question-answering windows carry ``start_positions <= end_positions``, both inside their window.

    Raises:
        ValueError: missing columns or the first misfit, naming ``name`` and the fix.

    Example:
        >>> import datasets
        >>> ds = datasets.Dataset.from_dict({"input_ids": [[2, 9, 3]], "start_positions": [1], "end_positions": [1]})
        >>> check_answer_positions(ds, "train_dataset")
    """
    if dataset is None:
        return
    missing = set(ANSWER_POSITION_KEYS) - set(dataset.column_names)
    if missing:
        raise ValueError(
            f"{name} lacks {sorted(missing)}: a question-answering head trains on the answer's token positions; "
            "tokenize question/context/answers rows with softprompt.tokenize_dataset"
        )
    starts = np.asarray(dataset.data.column("start_positions").to_numpy(zero_copy_only=False))
    ends = np.asarray(dataset.data.column("end_positions").to_numpy(zero_copy_only=False))
    tokens = pc.list_value_length(dataset.data.column("input_ids")).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero((starts < 0) | (starts > ends) | (ends >= tokens))
    if bad.size:
        row = int(bad[0])
        raise ValueError(
            f"{name}: row {row} has start_positions={int(starts[row])}, end_positions={int(ends[row])} for "
            f"{int(tokens[row])} tokens; positions must satisfy 0 <= start <= end < tokens ([CLS] for no answer)"
        )


def check_target_labels(dataset: datasets.Dataset | None, name: str) -> None:
    """Text-to-label rows carry their target's token ids: a list of integer labels with at least one that is not -100.

    Raises:
        ValueError: the first misfit, naming ``name`` and the fix.

    Example:
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


def check_task_labels(
    dataset: datasets.Dataset | None, name: str, task: Task | None, num_labels: int | None
) -> None:
    """:func:`check_token_labels` for token classification, :func:`check_answer_positions` for question
    answering, :func:`check_target_labels` for text-to-label, else :func:`softprompt.training_args.check_labels`."""
    if task is not None and task.is_text_to_label:
        check_target_labels(dataset, name)
    elif task is not None and task.is_question_answering:
        check_answer_positions(dataset, name)
    elif task is not None and task.is_token_level:
        check_token_labels(dataset, name, num_labels)
    else:
        check_labels(dataset, name, task, num_labels)


def task_collator(
    task: Task | None, tokenizer: PreTrainedTokenizerBase
) -> Callable[[list[dict[str, Any]]], Any]:
    """Pads each batch to its longest row; token labels and text-to-label target ids are padded with ``IGNORE_INDEX``.

    Example:
        >>> from softprompt.task import Task
        >>> type(task_collator(Task("token-classification"), tok)).__name__  # doctest: +SKIP
        'DataCollatorForTokenClassification'
    """
    if task is not None and task.is_token_level:
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(
            tokenizer, padding="longest", label_pad_token_id=IGNORE_INDEX
        )
    if task is not None and task.is_text_to_label:  # target ids: a causal LM's as long as its row, T5's not
        from transformers import DataCollatorForSeq2Seq

        return DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=IGNORE_INDEX)
    return padding_collator(tokenizer)


def task_compute_metrics(
    task: Task | None,
    id2label: Mapping[int, str] | None,
    *,
    eval_dataset: datasets.Dataset | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> Callable[[Any], dict[str, float]]:
    """The task's ``compute_metrics`` for ``Trainer``; token classification needs the tag names ``id2label``,
    question answering the tokenized ``eval_dataset`` and its ``tokenizer``.

    Raises:
        ValueError: token classification without IOB-style tag names; question-answering windows
            without the columns that scoring needs.
    """
    from softprompt.metrics import build_compute_metrics  # evaluate is imported only when training

    if task is not None and task.is_question_answering and eval_dataset is None:

        def no_windows(eval_pred: Any) -> dict[str, float]:
            raise ValueError(
                "question-answering answers are scored on the tokenized evaluation windows: pass compute_metrics="
                "softprompt.build_compute_metrics(task=task, eval_dataset=windows, tokenizer=tok) and "
                "TrainingArguments(include_for_metrics=['inputs'])"
            )

        return no_windows  # training without evaluation never calls it
    return build_compute_metrics(task=task, id2label=id2label, eval_dataset=eval_dataset, tokenizer=tokenizer)


# what Trainer needs for question answering: the labels it passes on and keeps, and the input ids that
# let compute_metrics find each prediction row's window (softprompt.qa_inference.qa_compute_metrics)
_QA_ARGS = {"label_names": list(ANSWER_POSITION_KEYS), "include_for_metrics": ["inputs"]}


def task_training_args(task: Task | None, args: Any = None) -> dict[str, Any]:
    """``TrainingArguments`` fields the task needs (question answering: ``label_names``, ``include_for_metrics``).

    With ``args`` (a caller's ``TrainingArguments``), check them instead and return ``{}``.

    Raises:
        ValueError: ``args`` that lack what the task needs.

    Example:
        >>> from softprompt.task import Task
        >>> task_training_args(Task("question-answering"))["label_names"]
        ['start_positions', 'end_positions']
    """
    if task is None or not task.is_question_answering:
        return {}
    if args is None:
        return {k: list(v) for k, v in _QA_ARGS.items()}
    for key, value in _QA_ARGS.items():
        if not set(value) <= set(getattr(args, key, None) or []):
            raise ValueError(
                f"question answering needs TrainingArguments({key}={value}) (got {getattr(args, key, None)!r}): "
                "Trainer otherwise drops the answer positions or cannot score the answers"
            )
    return {}
