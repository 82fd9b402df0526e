"""SQuAD-format answers for extractive question answering: the columns to read, each answer checked against its context.

An answer column holds, per row, ``{"text": [...], "answer_start": [...]}``: the answer's texts and
the character offsets where each starts in the context (SQuAD keeps several answers per question
in its evaluation splits, and none for an unanswerable one in SQuAD 2.0). Every answer must be
exactly ``context[answer_start:answer_start + len(text)]``: an offset that is off by a character
would train the wrong tokens, so it is an error that names its split and row.
"""

from __future__ import annotations

from typing import Any

import datasets

from softprompt.core.task import Task

__all__ = ["QA_COLUMNS", "encode_answers", "qa_columns", "qa_features"]

# the columns load_data gives a question-answering split (SQuAD's own names)
QA_COLUMNS = ("question", "context", "answers")


def qa_columns(
    task: Task | None,
    question_column: str | None,
    context_column: str | None,
    answers_column: str | None,
    *,
    text_pair_column: str | None,
    words: bool,
) -> tuple[Task, str, str, str] | None:
    """``(task, question, context, answers)`` columns when the data is question answering, else ``None``.

    It is question answering when ``task`` says so or any of the three columns is named; the
    columns default to SQuAD's ``question``, ``context`` and ``answers``.

    Raises:
        ValueError: a column named for another task, or token-classification or text-pair columns with it.

    Examples:
        >>> qa_columns(None, None, "passage", None, text_pair_column=None, words=False)[1:]
        ('question', 'passage', 'answers')
    """
    named = any(c is not None for c in (question_column, context_column, answers_column))
    if not named and (task is None or not task.is_question_answering):
        return None
    if task is not None and not task.is_question_answering:
        raise ValueError(
            f"question_column/context_column/answers_column are for question answering, but task={task.type.value!r}; "
            "pass task='question-answering' or drop them"
        )
    if words or text_pair_column is not None:
        raise ValueError(
            "question answering reads question_column, context_column and answers_column; it takes no "
            "text_pair_column, tokens_column or tags_column"
        )
    q, c, a = (
        given or default
        for given, default in zip((question_column, context_column, answers_column), QA_COLUMNS)
    )
    return Task("question-answering"), q, c, a


def qa_features() -> datasets.Features:
    """The features of a loaded question-answering split (SQuAD's layout, offsets as int64)."""
    answer = {"text": datasets.Value("string"), "answer_start": datasets.Value("int64")}
    return datasets.Features(
        {
            "question": datasets.Value("string"),
            "context": datasets.Value("string"),
            "answers": datasets.Sequence(answer),
        }
    )


def encode_answers(
    raw: dict[str, datasets.Dataset], context_column: str, answers_column: str, source: str
) -> dict[str, list[dict[str, list[Any]]]]:
    """Every split's answers as ``{"text": [...], "answer_start": [...]}``, each checked against its context.

    Args:
        raw: ``{split name: dataset}``.
        context_column: The columns to read.
        answers_column: The columns to read.
        source: What the data is, for messages.

    Raises:
        ValueError: an answer that is not ``{"text": [...], "answer_start": [...]}`` with lists of
            equal length, an empty answer text, an offset that is not a whole number, or an answer
            that is not the context's text at its offset (named by split and row).

    Examples:
        >>> ds = datasets.Dataset.from_dict({"context": ["Ada met Bob."],
        ...                                  "answers": [{"text": ["Bob"], "answer_start": [8]}]})
        >>> encode_answers({"train": ds}, "context", "answers", "data")
        {'train': [{'text': ['Bob'], 'answer_start': [8]}]}
    """
    out: dict[str, list[dict[str, list[Any]]]] = {}
    for split, ds in raw.items():
        where = f"split {split!r} of {source}"
        contexts = ds.data.column(context_column).to_pylist()
        rows = []
        for row, (context, answers) in enumerate(zip(contexts, ds.data.column(answers_column).to_pylist())):
            rows.append(_checked(answers, context, f"{where}: column {answers_column!r} row {row}"))
        out[split] = rows
    return out


def _checked(answers: Any, context: str, where: str) -> dict[str, list[Any]]:
    layout = "{'text': [...], 'answer_start': [...]} (SQuAD's layout)"
    if not isinstance(answers, dict) or set(answers) != {"text", "answer_start"}:
        raise ValueError(f"{where}: answers {answers!r:.80} are not {layout}")
    texts, starts = answers["text"], answers["answer_start"]
    if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
        raise ValueError(f"{where}: answers {answers!r:.80} need two lists of equal length, {layout}")
    for text, start in zip(texts, starts):
        if not isinstance(text, str) or not text:
            raise ValueError(f"{where}: answer text {text!r} is empty or not a string; drop it (an unanswerable "
                             "question has empty lists)")  # fmt: skip
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"{where}: answer_start {start!r} of answer {text!r} is not a character offset")
        found = context[start : start + len(text)]
        if found != text:
            raise ValueError(
                f"{where}: answer {text!r} at answer_start={start} does not match the context there ({found!r}); "
                "answer_start must be the character offset of the answer in the context"
            )
    return {"text": list(texts), "answer_start": [int(s) for s in starts]}
