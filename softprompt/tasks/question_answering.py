"""The question-answering family: answer positions as labels, windows scored as answers, SQuAD metrics.

Training rows are windows of a long context carrying ``start_positions``/``end_positions`` (``Trainer``'s
``label_names``), padded like sequence rows; evaluation maps each window back to its example and
scores the answers (:mod:`softprompt.tasks.answers` predicts them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import datasets
import numpy as np
import pyarrow.compute as pc
from torch import nn

from softprompt.core.constants import ANSWER_POSITION_KEYS
from softprompt.core.task import Task, TaskType
from softprompt.metrics.squad import squad_scores
from softprompt.tasks.answers import predict_answers, qa_compute_metrics, validate_qa_inputs
from softprompt.tasks.base import Call, Labels, Metrics, TaskFamily

__all__ = ["QuestionAnswering", "check_answer_positions"]


def check_answer_positions(dataset: datasets.Dataset | None, name: str) -> None:
    """Question-answering windows carry ``start_positions <= end_positions``, both inside their window.

    Raises:
        ValueError: missing columns or the first misfit, naming ``name`` and the fix.

    Examples:
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


# what Trainer needs for question answering: the labels it passes on and keeps, and the input ids that
# let compute_metrics find each prediction row's window (qa_compute_metrics)
_QA_ARGS = {"label_names": list(ANSWER_POSITION_KEYS), "include_for_metrics": ["inputs"]}


class QuestionAnswering(TaskFamily):
    """Extractive question answering: start and end logits per token, answers over a context's windows.

    Examples:
        >>> QuestionAnswering().training_args(Task("question-answering"))["label_names"]
        ['start_positions', 'end_positions']
    """

    name: ClassVar[str] = "question-answering"
    task_types: ClassVar[tuple[TaskType, ...]] = (TaskType.QUESTION_ANSWERING,)
    eval_columns: ClassVar[tuple[str, ...]] = ("question", "context", "answers")
    predict_options: ClassVar[tuple[str, ...]] = ("stride", "max_answer_length")
    metrics_need_windows: ClassVar[bool] = True
    example_call: ClassVar[str] = (
        'print(wrapper.predict([("Who wrote it?", "It was written by Ada in Paris.")]))  # Answer spans'
    )

    def tokenize(
        self, dataset: datasets.Dataset, model: Any, tokenizer: Any, **sizes: Any
    ) -> datasets.Dataset:
        """Question-context windows with their answers' token positions (``doc_stride`` overlap)."""
        from softprompt.data import tokenize_dataset  # windows of long contexts, ``stride`` tokens shared

        return tokenize_dataset(dataset, tokenizer, **sizes)

    def check_labels(
        self, dataset: datasets.Dataset | None, name: str, task: Task | None, num_labels: int | None
    ) -> None:
        """Check the windows carry answer start and end positions."""
        check_answer_positions(dataset, name)

    def training_args(self, task: Task | None, args: Any = None) -> dict[str, Any]:
        """The ``TrainingArguments`` settings the windows need (position labels, inputs for scoring); checks ``args`` has them."""
        if args is None:
            return {k: list(v) for k, v in _QA_ARGS.items()}
        for key, value in _QA_ARGS.items():
            if not set(value) <= set(getattr(args, key, None) or []):
                raise ValueError(
                    f"question answering needs TrainingArguments({key}={value}) (got {getattr(args, key, None)!r}): "
                    "Trainer otherwise drops the answer positions or cannot score the answers"
                )
        return {}

    def trainer_metrics(
        self, task: Task, id2label: Labels, *, eval_dataset: Any = None, tokenizer: Any = None
    ) -> Metrics:
        """SQuAD exact match and F1 of the answers read off the evaluation windows."""
        if eval_dataset is None or tokenizer is None:

            def no_windows(eval_pred: Any) -> dict[str, float]:
                raise ValueError(
                    "question-answering answers are scored on the tokenized evaluation windows: pass compute_metrics="
                    "softprompt.build_compute_metrics(task=task, eval_dataset=windows, tokenizer=tok) and "
                    "TrainingArguments(include_for_metrics=['inputs'])"
                )

            return no_windows  # training without evaluation never calls it
        return qa_compute_metrics(eval_dataset, tokenizer)

    def score(
        self, task: Task, predictions: Any, references: Any, id2label: Mapping[int, str] | None = None
    ) -> dict[str, float]:
        """SQuAD exact match and F1 of answer texts against each question's gold answers."""
        texts = [getattr(p, "text", p) for p in predictions]  # Answer objects or texts
        return squad_scores(texts, [list(r) for r in references])

    def predict(self, model: nn.Module, tokenizer: Any, texts: Sequence[Any], call: Call) -> list[Any]:
        """One :class:`~softprompt.Answer` per ``(question, context)`` pair."""
        names = call.prompt_names(len(validate_qa_inputs(texts)[0]) if call.prompt is not None else 0)
        return predict_answers(model, tokenizer, texts, prompt_names=names, **call.batching, **call.options)

    def evaluate(
        self, model: nn.Module, tokenizer: Any, dataset: datasets.Dataset, call: Call
    ) -> dict[str, float]:
        """Answer each row's question over its context's windows and score it against the gold answers."""

        def run() -> dict[str, float]:
            pairs = list(zip(dataset["question"], dataset["context"]))
            answers = predict_answers(model, tokenizer, pairs, **call.batching, **call.options)
            return self.score(call.task, answers, [a["text"] for a in dataset["answers"]])

        return self.timed(run, len(dataset))
