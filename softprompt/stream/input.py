"""Read a table of texts (parquet, JSON lines or CSV) of any size in fixed-size chunks of rows, in constant memory.

Chunk ``k`` is always rows ``[k * chunk_rows, (k + 1) * chunk_rows)`` of the file, whatever the format's own
blocks are, so a chunk's rows, and so its predictions, depend on the file and the chunk size alone: a resumed
run and every process of a sharded one see the same chunks. Rows are numbered from 0 in file order (JSON
lines: blank lines are not rows; CSV: the header is not a row).

Examples:
    >>> reader = ChunkReader("texts.parquet", Columns("text"), chunk_rows=2)  # doctest: +SKIP
    >>> [(k, rows) for k, rows in reader]  # doctest: +SKIP
    [(0, ['a fine film', 'dull']), (1, ['superb'])]
    >>> reader.total_rows  # doctest: +SKIP
    3
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from softprompt.core.constants import MAX_TEXT_CHARS
from softprompt.utils.inputs import parse_json

__all__ = [
    "FORMATS",
    "ChunkReader",
    "Columns",
    "column_names",
    "input_format",
    "resolve_columns",
]

FORMATS = {".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
# rows read, predicted and written at a time: sorting by length pays within a chunk; a kill loses at most one
DEFAULT_CHUNK_ROWS = 4096


@dataclass(frozen=True)
class Columns:
    """Which columns hold the input: ``text``, and ``text_pair`` for pairs (question answering: question, context)."""

    text: str
    text_pair: str | None = None


def input_format(path: str | os.PathLike[str]) -> str:
    """``"parquet"``, ``"jsonl"`` or ``"csv"``, from the file's suffix.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a folder, or an unsupported suffix.

    Examples:
        >>> input_format("preds/in.jsonl")  # doctest: +SKIP
        'jsonl'
    """
    file = Path(path)
    if not file.exists():
        raise FileNotFoundError(f"--input {str(path)!r}: no such file")
    if not file.is_file():
        raise ValueError(f"--input {str(path)!r} is not a file; give a .parquet, .jsonl or .csv file")
    fmt = FORMATS.get(file.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"--input {str(path)!r}: unsupported suffix {file.suffix!r}; use one of {sorted(FORMATS)} "
            "(small text files: --file)"
        )
    return fmt


def column_names(path: str | os.PathLike[str]) -> list[str]:
    """The input's columns: a parquet schema's, a CSV header's, or the keys of the first JSON line ([] when empty)."""
    fmt = input_format(path)
    try:
        if fmt == "parquet":
            with pq.ParquetFile(path) as file:
                return list(file.schema_arrow.names)
        if fmt == "csv":
            return [str(name) for name in pd.read_csv(path, nrows=0, encoding="utf-8").columns]
    except (pa.ArrowException, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"--input {str(path)!r}: cannot read it as {fmt}: {exc}") from exc
    for _, lineno, line in _json_lines(Path(path)):
        return list(_parse_json_line(path, lineno, line))
    return []


def resolve_columns(
    path: str | os.PathLike[str],
    text_column: str | None = None,
    text_pair_column: str | None = None,
    *,
    question_answering: bool = False,
) -> Columns:
    """The columns to read: ``text_column`` (default ``text``; ``question`` for question answering) and
    ``text_pair_column`` (default ``text_pair`` where the input has it; ``context`` for question answering).

    Raises:
        ValueError: a column the input lacks (the message lists the ones it has).

    Examples:
        >>> resolve_columns("qa.jsonl", question_answering=True)  # doctest: +SKIP
        Columns(text='question', text_pair='context')
    """
    names = column_names(path)
    if question_answering:
        text, pair = text_column or "question", text_pair_column or "context"
    else:
        text = text_column or "text"
        pair = text_pair_column or ("text_pair" if "text_pair" in names else None)
    for flag, name in (("--text-column", text), ("--text-pair-column", pair)):
        if name is not None and names and name not in names:
            raise ValueError(f"--input {str(path)!r} has no column {name!r} ({flag}); its columns: {names}")
    return Columns(text, pair)


class ChunkReader:
    """Iterate ``(chunk index, rows)`` over chunks ``first_chunk, first_chunk + step, ...`` of a table file.

    Each row is its text, or a ``(text, text_pair)`` tuple. Rows of the other chunks are passed over without
    being converted (parquet row groups holding none of the wanted rows are not even read). After a full
    iteration, ``total_rows`` is the number of rows in the file. At most one chunk of rows and one block
    of the file (a parquet batch, or a pandas frame of CSV, of ``chunk_rows`` rows; a line of JSON) are
    held at a time.

    Args:
        path: A ``.parquet``, ``.jsonl``/``.ndjson`` or ``.csv`` file.
        columns: The columns to read (:func:`resolve_columns`).
        chunk_rows: Rows per chunk.
        first_chunk: The first chunk to yield.
        step: Yield every ``step``-th chunk from ``first_chunk`` on (a process's shard: ``first_chunk = rank``,
            ``step = world size``).

    Raises:
        TypeError: ``chunk_rows``, ``first_chunk`` or ``step`` is not an int.
        ValueError: a bad value of those, or, while iterating, a row without a string in a column.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        columns: Columns,
        chunk_rows: int,
        *,
        first_chunk: int = 0,
        step: int = 1,
    ) -> None:
        for name, value, least in (
            ("chunk_rows", chunk_rows, 1),
            ("first_chunk", first_chunk, 0),
            ("step", step, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if value < least:
                raise ValueError(f"{name} must be at least {least}, got {value}")
        self.path, self.columns, self.chunk_rows = Path(path), columns, chunk_rows
        self.first_chunk, self.step = first_chunk, step
        self.format = input_format(path)
        self.total_rows: int | None = None
        self.truncated_rows = 0  # rows with a text longer than MAX_TEXT_CHARS, cut to it before tokenizing

    def __iter__(self) -> Iterator[tuple[int, list[Any]]]:
        size, wanted, pending = self.chunk_rows, self.first_chunk, []
        end = 0
        for start, count, convert in self._blocks():
            end = start + count
            pos = 0
            while pos < count:
                row = start + pos
                if row < wanted * size:  # a row of another process's (or an already done) chunk
                    pos = min(count, wanted * size - start)
                    continue
                stop = min(count, (wanted + 1) * size - start)
                pending.extend(convert(pos, stop))
                pos = stop
                if len(pending) == size:
                    yield wanted, pending
                    wanted, pending = wanted + self.step, []
        if self.format == "parquet":
            with pq.ParquetFile(self.path) as file:  # trailing row groups were not read
                end = file.metadata.num_rows
        self.total_rows = end
        if pending:
            yield wanted, pending

    def _chunk_wanted(self, k: int) -> bool:
        return k >= self.first_chunk and (k - self.first_chunk) % self.step == 0

    def _wanted(self, lo: int, hi: int) -> bool:
        """Whether rows ``[lo, hi)`` hold a row of a wanted chunk."""
        first, last = max(lo // self.chunk_rows, self.first_chunk), (hi - 1) // self.chunk_rows
        next_wanted = first + (self.first_chunk - first) % self.step  # the first wanted chunk from `first` on
        return next_wanted <= last

    def _blocks(self) -> Iterator[tuple[int, int, Any]]:
        """``(first row, row count, convert(lo, hi) -> rows)`` per block of the file, in file order."""
        if self.format == "parquet":
            yield from self._parquet_blocks()
        elif self.format == "csv":
            yield from self._csv_blocks()
        else:
            yield from self._json_blocks()

    def _names(self) -> list[str]:
        return [self.columns.text, *([self.columns.text_pair] if self.columns.text_pair else [])]

    def _parquet_blocks(self) -> Iterator[tuple[int, int, Any]]:
        try:
            with pq.ParquetFile(self.path) as file:
                yield from self._row_groups(file)
        except pa.ArrowException as exc:
            raise ValueError(f"--input {str(self.path)!r}: cannot read it as parquet: {exc}") from exc

    def _row_groups(self, file: pq.ParquetFile) -> Iterator[tuple[int, int, Any]]:
        """The batches of the row groups that hold wanted rows (the others are skipped unread)."""
        start = 0
        for group in range(file.num_row_groups):
            rows = file.metadata.row_group(group).num_rows
            if rows and self._wanted(start, start + rows):
                at = start
                for batch in file.iter_batches(
                    batch_size=self.chunk_rows, row_groups=[group], columns=self._names()
                ):
                    yield at, batch.num_rows, self._arrow_converter(batch, at)
                    at += batch.num_rows
            start += rows

    def _csv_blocks(self) -> Iterator[tuple[int, int, Any]]:
        names = self._names()
        try:
            # texts stay text ("007" is not 7) and an empty field is an empty string, not NaN; quoted line breaks
            # are part of a text; pandas parses chunk_rows rows at a time
            with pd.read_csv(self.path, chunksize=self.chunk_rows, usecols=names, dtype=str, na_filter=False,
                             encoding="utf-8") as reader:  # fmt: skip
                start = 0
                for frame in reader:
                    yield start, len(frame), self._frame_converter(frame, start)
                    start += len(frame)
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise ValueError(f"--input {str(self.path)!r}: cannot read it as CSV: {exc}") from exc

    def _frame_converter(self, frame: pd.DataFrame, start: int) -> Any:
        def convert(lo: int, hi: int) -> list[Any]:
            values = [frame[name].iloc[lo:hi].tolist() for name in self._names()]
            return [self._row(start + lo + i, items) for i, items in enumerate(zip(*values))]

        return convert

    def _arrow_converter(self, batch: pa.RecordBatch, start: int) -> Any:
        for name in self._names():
            kind = batch.schema.field(name).type
            if str(kind) not in ("string", "large_string", "string_view"):
                raise ValueError(f"--input {str(self.path)!r}: column {name!r} holds {kind}, not strings")

        def convert(lo: int, hi: int) -> list[Any]:
            part = batch.slice(lo, hi - lo)
            values = [part.column(name).to_pylist() for name in self._names()]
            return [self._row(start + lo + i, items) for i, items in enumerate(zip(*values))]

        return convert

    def _json_blocks(self) -> Iterator[tuple[int, int, Any]]:
        """One block per chunk; the lines of a chunk that is not wanted are counted, not kept or parsed."""
        size, block, start, count = self.chunk_rows, [], 0, 0
        keep = self._chunk_wanted(0)
        for row, lineno, line in _json_lines(self.path):
            if keep:
                block.append((lineno, line))
            count = row + 1
            if count % size == 0:
                yield start, size, self._json_converter(block)
                block, start, keep = [], count, self._chunk_wanted(count // size)
        if count > start:
            yield start, count - start, self._json_converter(block)

    def _json_converter(self, block: list[tuple[int, bytes]]) -> Any:
        def convert(lo: int, hi: int) -> list[Any]:
            out = []
            for lineno, line in block[lo:hi]:
                obj = _parse_json_line(self.path, lineno, line)
                missing = [name for name in self._names() if name not in obj]
                if missing:
                    raise ValueError(f"{self.path}:{lineno}: no {missing[0]!r} field; it has {sorted(obj)}")
                out.append(self._row(f"line {lineno}", [obj[name] for name in self._names()]))
            return out

        return convert

    def _row(self, where: int | str, values: Sequence[Any]) -> Any:
        for name, value in zip(self._names(), values):
            if not isinstance(value, str):
                place = where if isinstance(where, str) else f"row {where}"
                shown = "null" if value is None else f"{type(value).__name__} {value!r:.40}"
                raise ValueError(
                    f"--input {str(self.path)!r}, {place}: column {name!r} holds {shown}, not a string"
                )
        if any(
            len(value) > MAX_TEXT_CHARS for value in values
        ):  # the tokenizer keeps max_length tokens anyway
            self.truncated_rows += 1
            values = [value[:MAX_TEXT_CHARS] for value in values]
        return values[0] if len(values) == 1 else tuple(values)


def _json_lines(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """``(row, line number, line)`` per non-blank line, read one line at a time."""
    row = 0
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                yield row, lineno, line
                row += 1


def _parse_json_line(path: str | os.PathLike[str], lineno: int, line: bytes) -> dict[str, Any]:
    obj = parse_json(line, f"{path}:{lineno}")  # the input policy: a row nests as deep as a config may
    if not isinstance(obj, dict):
        raise ValueError(f"{path}:{lineno}: a JSON {type(obj).__name__}, not an object with a text field")
    return obj
