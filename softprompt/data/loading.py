"""`load_data`: any supported source to checked ``text`` / ``text_pair`` / ``label`` splits (``tokens`` /
``tags`` for token classification, ``question`` / ``context`` / ``answers`` for question answering) and their :class:`Task`.

The same function feeds prompt tuning, fine-tuning, ``softprompt eval`` and the CLI, so every run
checks its data the same way before anything is trained.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import datasets
import pyarrow as pa

from softprompt.core.task import QA_OUTPUT_NAMES, Task, TaskType
from softprompt.data.answers import encode_answers, qa_columns, qa_features
from softprompt.data.labels import encode_labels, infer_task
from softprompt.data.sources import held_out_splits, load_splits
from softprompt.data.tags import check_word_columns, encode_tags

__all__ = ["TaskData", "load_data"]

logger = logging.getLogger(__name__)


@dataclass
class TaskData:
    """The splits of a dataset, its task and class names.

    Each split has the columns ``text`` (string), ``text_pair`` (string, pair tasks only) and
    ``label``: int64 class ids, float32 values (regression) or 0/1 float32 vectors (multi-label).
    Token classification splits have ``tokens`` (a list of words per row) and ``tags`` (one int64
    tag id per word); ``label_names`` are then the tag names (``O``, ``B-PER``...). Question-answering
    splits have ``question``, ``context`` and SQuAD-style ``answers`` (``{"text": [...],
    "answer_start": [...]}``); ``label_names`` are the head's two outputs, ``["start", "end"]``.

    Attributes:
        train: The training split (``None`` when not loaded).
        eval: The evaluation split (``None`` when not loaded).
        label_names: Class (or tag) names in id order; empty for regression.
        task: The :class:`~softprompt.Task`.
        is_pair: Whether the rows are text pairs.
        eval_split: The split ``eval`` came from (``"auto"`` resolved).

    Raises:
        ValueError: fewer than 2 class names for a task that needs classes, or a repeated name.

    Examples:
        >>> data = TaskData(train=None, eval=None, label_names=["neg", "pos"])
        >>> data.id2label, data.num_labels, data.task.type.value
        ({0: 'neg', 1: 'pos'}, 2, 'classification')
    """

    train: datasets.Dataset | None
    eval: datasets.Dataset | None
    label_names: list[str]
    task: Task = field(default_factory=Task)
    is_pair: bool = False
    eval_split: str | None = None  # the split ``eval`` came from (``"auto"`` resolved)

    def __post_init__(self) -> None:
        self.label_names = [str(n) for n in self.label_names]
        if not isinstance(self.task, Task):
            self.task = Task(self.task)
        self.task.num_labels(self.label_names)  # classes present unless regression
        if len(set(self.label_names)) != len(self.label_names):
            raise ValueError(f"label_names {self.label_names} repeats a name; each class needs its own")

    @property
    def id2label(self) -> dict[int, str]:
        """``{label id: class name}`` (``{0: "value"}`` for regression), as ``PretrainedConfig`` wants it."""
        return dict(enumerate(self.label_names)) if self.label_names else {0: "value"}

    @property
    def label2id(self) -> dict[str, int]:
        """``{class name: label id}``, the inverse of :attr:`id2label`."""
        return {name: i for i, name in self.id2label.items()}

    @property
    def num_labels(self) -> int:
        """Outputs of the head: the number of classes, or 1 for regression."""
        return self.task.num_labels(self.label_names)

    def model_kwargs(self) -> dict[str, Any]:
        """What ``from_pretrained`` of the task's model class (``task.auto_model_class``) needs for this task.

        Returns:
            ``num_labels``, ``id2label``, ``label2id`` and ``problem_type``.

        Examples:
            >>> TaskData(None, None, [], task="regression").model_kwargs()["problem_type"]
            'regression'
        """
        return {
            "num_labels": self.num_labels,
            "id2label": self.id2label,
            "label2id": self.label2id,
            "problem_type": self.task.problem_type,
        }


def load_data(
    data: Any,
    *,
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_column: str = "label",
    tokens_column: str | None = None,
    tags_column: str | None = None,
    question_column: str | None = None,
    context_column: str | None = None,
    answers_column: str | None = None,
    task: str | Task | None = None,
    train_split: str | None = "train",
    eval_split: str | None = "auto",
    train_size: int | None = None,
    eval_size: int | None = None,
    seed: int = 42,
    label_names: Sequence[str] | None = None,
    config_name: str | None = None,
    holdout: float | None = None,
) -> TaskData:
    """Load, check and subsample a single-text, text-pair or word-tagging dataset for a task.

    ``data`` is a local folder of split files (``train.parquet``, ``validation.csv``, ...), one
    such file (split ``"train"``), a ``<split>/<class>/*.txt`` folder, a Hub dataset name (with
    ``config_name``, e.g. ``"glue"``, ``"mrpc"``), a ``datasets.Dataset``/``DatasetDict`` or a
    pandas ``DataFrame`` (a single ``Dataset``/``DataFrame`` is split ``"train"``).

    The task is ``task`` if given, else inferred from the label column: lists are multi-label;
    strings, integers and ``ClassLabel`` are classification; floats with a fraction are
    regression. Class names come from ``ClassLabel``, else ``label_names``, else the sorted
    string labels, else ``"0".."K-1"``. Subsets are reproducible:
    ``split.shuffle(seed=seed).select(range(size))``.

    Token classification (``task="token-classification"``, or a ``tags_column``/``tokens_column``
    given): each row is a list of words and one tag per word (IOB2 ``B-PER``, ``I-PER``, ``O``...).
    Tag names come from a ``ClassLabel`` inside the tags' list feature, else ``label_names``, else
    the training split's string tags (``O`` first, the rest sorted); integer tags need one of the
    first two. The splits get the columns ``tokens`` and ``tags`` (tag ids); ``text_column``,
    ``label_column`` and ``text_pair_column`` are not used.

    Question answering (``task="question-answering"``, or a question, context or answers column
    given): SQuAD's layout, a question, its context and ``{"text": [...], "answer_start": [...]}``
    answers (several per question in evaluation splits, none for an unanswerable one); each answer
    must be the context's text at its offset. The splits get ``question``, ``context`` and ``answers``.

    Args:
        data: The source, as above.
        text_column: Column of the (first) texts.
        text_pair_column: Column of the second texts; giving it makes a pair task (tokenized as a
            pair, ``token_type_ids`` kept).
        label_column: Column of the labels (class ids or names, several per row for multi-label,
            numbers for regression).
        tokens_column: Token classification's column of each row's words (default ``"tokens"``, the
            Hub's NER layout); giving it makes the task token classification.
        tags_column: Token classification's column of each word's tag (default ``"ner_tags"``).
        question_column: Question answering's question column (default ``"question"``, SQuAD's);
            giving a question, context or answers column makes the task question answering.
        context_column: Question answering's context column (default ``"context"``).
        answers_column: Question answering's answers column (default ``"answers"``).
        task: ``"classification"``, ``"multi-label"``, ``"regression"``, ``"token-classification"``,
            ``"question-answering"`` or a :class:`Task`.
        train_split: The training split's name, or ``None`` for no training rows.
        eval_split: The evaluation split's name, ``None`` for none, or ``"auto"``: ``validation``
            where there is one, else ``test``.
        train_size: Training rows to keep at random, ``None`` for all.
        eval_size: Evaluation rows to keep at random, ``None`` for all.
        seed: Seed of the subsets.
        label_names: Class (or tag) names in id order (for ids without names, or to fix the
            order of string labels); not used for question answering.
        config_name: A Hub dataset's configuration.
        holdout: A fraction in ``(0, 1)``: the evaluation rows are that share of ``train_split``'s rows
            (``"train"`` when it is ``None``), picked with ``seed`` and never trained on, for data that
            comes as one file; ``eval_split`` must then be ``"auto"`` or ``None``.

    Returns:
        :class:`TaskData`.

    Raises:
        FileNotFoundError: a path that does not exist, or a Hub name that cannot be loaded.
        TypeError: ``data`` of an unsupported type.
        ValueError: a missing split or column (the message lists what there is), an empty split,
            a missing text, a label that does not fit the task (named with its row), an
            ambiguous task, sizes larger than their split, or ``train_split == eval_split``; for
            token classification also a row whose tag count differs from its word count, an empty
            word, tag names that are not IOB-style, or a text pair column; for question answering
            an answer that is not the context's text at its ``answer_start``.

    Examples:
        >>> import pandas as pd
        >>> pairs = pd.DataFrame({"sentence_a": ["A man cooks", "A dog runs"] * 4,
        ...                       "sentence_b": ["Someone cooks", "A cat sleeps"] * 4, "relatedness": [4.6, 1.3] * 4})
        >>> pairs.to_csv("sick.csv", index=False)
        >>> data = load_data("sick.csv", text_column="sentence_a", text_pair_column="sentence_b",
        ...                  label_column="relatedness", holdout=0.25)
        >>> data.task.type.value, data.is_pair, len(data.train), len(data.eval)
        ('regression', True, 6, 2)
        >>> sentences = pd.DataFrame({"tokens": [["Ada", "lives", "in", "London"]] * 4, "ner_tags": [[1, 0, 0, 2]] * 4})
        >>> sentences.to_json("ner.jsonl", orient="records", lines=True)
        >>> ner = load_data("ner.jsonl", task="token-classification", label_names=["O", "B-PER", "B-LOC"], holdout=0.5)
        >>> ner.label_names, ner.train.column_names
        (['O', 'B-PER', 'B-LOC'], ['tokens', 'tags'])
    """
    if train_split is None and eval_split is None:
        raise ValueError("train_split and eval_split are both None; name at least one split to load")
    if train_split is not None and train_split == eval_split:
        raise ValueError(
            f"train_split and eval_split are both {train_split!r}; scores on training rows say nothing about "
            "new data. Pass another eval_split, or eval_split=None"
        )
    if task is not None and not isinstance(task, Task):
        task = Task(task)
    words = tokens_column is not None or tags_column is not None or (task is not None and task.is_token_level)
    if words:
        if task is not None and not task.is_token_level:
            raise ValueError(
                f"tokens_column/tags_column are for token classification, but task={task.type.value!r}; pass "
                "task='token-classification' or drop them"
            )
        if text_pair_column is not None:
            raise ValueError(
                "token classification tags one list of words per row; it takes no text_pair_column"
            )
        task = task or Task("token-classification")
        text_column, label_column = tokens_column or "tokens", tags_column or "ner_tags"
    if task is not None and task.is_text_to_label and text_pair_column is not None:
        raise ValueError(
            "text-to-label reads one text per row (a language model's input): join each pair into one text column "
            "(e.g. 'premise: ... hypothesis: ...') and drop text_pair_column"
        )
    qa = qa_columns(task, question_column, context_column, answers_column, text_pair_column=text_pair_column,
                    words=words)  # fmt: skip
    if qa is not None:  # the question is the text, the context its pair, the answers its label
        task, text_column, text_pair_column, label_column = qa
    columns = [c for c in (text_column, text_pair_column, label_column) if c is not None]
    if len(set(columns)) != len(columns):
        raise ValueError(f"text, text pair and label columns must be different columns, got {columns}")
    sizes = {"train_size": train_size, "eval_size": eval_size}
    for arg, size in sizes.items():
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"{arg}={size!r} must be a positive int, or None to keep the whole split")
    source = os.fspath(data) if isinstance(data, (str, os.PathLike)) else type(data).__name__
    if holdout is not None:
        raw, resolved = held_out_splits(
            data, train_split, eval_split, holdout, seed, text_column, label_column, config_name
        )
    else:
        roles = [(r, s) for r, s in (("train", train_split), ("eval", eval_split)) if s is not None]
        raw = load_splits(data, [s for _, s in roles], text_column, label_column, config_name=config_name)
        resolved = dict(zip([r for r, _ in roles], raw))  # role -> resolved split name
    for split, ds in raw.items():
        if words:
            check_word_columns(ds, split, str(source), text_column, label_column)
            continue
        _check_columns(ds, split, str(source), text_column, text_pair_column, label_column)
        labels_column = ds.data.column(label_column)
        if labels_column.null_count:
            row = labels_column.to_pylist().index(None)
            raise ValueError(
                f"split {split!r} of {source}: column {label_column!r} has a missing label (None) at row {row}; drop or fill it"
            )

    task = _resolve_task(task, raw, label_column, str(source))
    if words:
        labels, names = encode_tags(raw, text_column, label_column, str(source), label_names)
    elif qa is not None:
        labels = encode_answers(raw, text_pair_column, label_column, str(source))
        names = list(QA_OUTPUT_NAMES)  # the head's two outputs per token
    else:
        labels, names = encode_labels(task, raw, label_column, str(source), label_names)
    kept: dict[str, datasets.Dataset | None] = {"train": None, "eval": None}
    for role, split in resolved.items():
        ds = raw[split]
        keep = [text_column] + ([text_pair_column] if text_pair_column else [])
        names_of = ("tokens",) if words else ("question", "context") if qa else ("text", "text_pair")
        ds = ds.select_columns(keep).rename_columns({c: n for c, n in zip(keep, names_of) if c != n})
        split_labels = labels[split]
        column = "tags" if words else "answers" if qa else "label"
        ds = ds.add_column(column, list(split_labels) if words or qa else split_labels.tolist())
        size = sizes[f"{role}_size"]
        if size is not None:
            if size > len(ds):
                raise ValueError(
                    f"{role}_size={size} is larger than split {split!r} of {source}, which has {len(ds)} rows; "
                    f"pass at most {len(ds)}, or None to keep it all"
                )
            ds = ds.shuffle(seed=seed).select(range(size))  # depends only on the row count and the seed
        kept[role] = ds.cast(_features(task, len(names), text_pair_column is not None))
    result = TaskData(
        train=kept["train"], eval=kept["eval"], label_names=names, task=task,
        is_pair=text_pair_column is not None and qa is None, eval_split=resolved.get("eval"),
    )  # fmt: skip
    logger.info(
        "loaded %s: task %s%s, train=%s eval=%s (%s) rows, labels %s", source, task.type.value,
        " (pairs)" if result.is_pair else "", None if result.train is None else len(result.train),
        None if result.eval is None else len(result.eval), result.eval_split, names or "(values)",
    )  # fmt: skip
    return result


def _features(task: Task, num_classes: int, pair: bool) -> datasets.Features:
    if task.is_question_answering:
        return qa_features()
    if task.is_token_level:
        return datasets.Features(
            {
                "tokens": datasets.Sequence(datasets.Value("string")),
                "tags": datasets.Sequence(datasets.Value("int64")),
            }
        )
    label: Any = {
        TaskType.CLASSIFICATION: datasets.Value("int64"),
        TaskType.TEXT_TO_LABEL: datasets.Value("int64"),  # class ids; tokenizing makes their words targets
        TaskType.REGRESSION: datasets.Value("float32"),
        TaskType.MULTI_LABEL: datasets.Sequence(datasets.Value("float32"), length=num_classes),
    }[task.type]
    cols = {"text": datasets.Value("string")}
    if pair:
        cols["text_pair"] = datasets.Value("string")
    return datasets.Features({**cols, "label": label})


def _resolve_task(task: Task | None, raw: dict[str, datasets.Dataset], column: str, source: str) -> Task:
    if task is not None:
        return task
    first = next(iter(raw))
    inferred = infer_task(raw[first].features[column], raw[first].data.column(column))
    if inferred is None:
        raise ValueError(
            f"cannot tell the task from column {column!r} of {source} ({raw[first].data.column(column).type}); "
            "pass task='classification', 'multi-label' or 'regression'"
        )
    logger.info("task inferred from column %r: %s (pass task= to choose another)", column, inferred.value)
    return Task(inferred)


def _check_columns(
    ds: datasets.Dataset,
    split: str,
    source: str,
    text_column: str,
    pair_column: str | None,
    label_column: str,
) -> None:
    where = f"split {split!r} of {source}"
    if len(ds) == 0:
        raise ValueError(f"{where} is empty; a split needs at least one row")
    for column, arg in (
        (text_column, "text_column"),
        (pair_column, "text_pair_column"),
        (label_column, "label_column"),
    ):
        if column is not None and column not in ds.column_names:
            raise ValueError(
                f"{where} has no column {column!r}; its columns are {ds.column_names}. Pass {arg}= to name the right one"
            )
    for column in (text_column, pair_column):
        if column is None:
            continue
        texts = ds.data.column(column)
        if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
            raise ValueError(f"{where}: column {column!r} holds {texts.type}, not text; name a text column")
        if texts.null_count:
            row = texts.to_pylist().index(None)
            raise ValueError(f"{where}: column {column!r} has a missing text at row {row}; drop or fill it")
