"""``softprompt predict --input FILE``: predictions for a table of any size, chunk by chunk, resumable after a
kill, and shared across ``torchrun`` processes.

The output is JSON lines, ``{"row": i, ...prediction}`` in input order. After each chunk its lines are appended
to the output and fsynced, then the state file ``OUTPUT.state.json`` is replaced atomically: the next chunk,
the rows done, the output's length and SHA-256, the input's fingerprint and the settings that change results.
``resume`` checks the fingerprint and settings, cuts the output back to the recorded length (a kill can leave
part of a chunk after it) and goes on with the next chunk. Process ``r`` of ``N`` writes chunks ``r, r + N,
...`` to ``OUTPUT.part-r-of-N`` (with its own state file); after a barrier process 0 merges the parts in row
order into ``OUTPUT``, the bytes one process writes.

Examples:
    >>> log = ChunkLog.open("preds.jsonl", identity, Shard(), resume=True)  # doctest: +SKIP
    >>> run_chunks(log, ChunkReader("in.parquet", Columns("text"), 4096, first_chunk=log.next_chunk), predict)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import secrets
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from tqdm.auto import tqdm

from softprompt.stream.chunk_log import (
    STATE_SUFFIX,
    STATE_VERSION,
    ChunkLog,
    check_identity,
    input_fingerprint,
    part_path,
    read_state,
    state_path,
    verified_prefix,
)
from softprompt.stream.input import DEFAULT_CHUNK_ROWS, ChunkReader, input_format, resolve_columns
from softprompt.utils.atomic import atomic_write_json, check_file_target
from softprompt.utils.sharding import Shard, barrier, process_group

__all__ = [
    "merge_parts",
    "predict_input",
    "prediction_dict",
    "prepare_output",
    "run_chunks",
]


def prediction_dict(prediction: Any) -> dict[str, Any]:
    """A prediction as JSON-ready fields; a token-classification result (a list of entities) as ``entities``.

    Examples:
        >>> from softprompt.core.predictions import RegressionPrediction
        >>> prediction_dict(RegressionPrediction(value=0.5))
        {'value': 0.5}
    """
    if hasattr(prediction, "to_dict"):
        return prediction.to_dict()
    return {"entities": [entity.to_dict() for entity in prediction]}


def prepare_output(output: str | os.PathLike[str], identity: Mapping[str, Any], shard: Shard, *, resume: bool,
                   overwrite: bool) -> ChunkLog | None:  # fmt: skip
    """This process's :class:`ChunkLog`, or ``None`` when ``resume`` finds the output complete already.

    Raises:
        ValueError: as :meth:`ChunkLog.open`, and for parts (or a state) left by a run with another number
            of processes.
    """
    output, final = Path(output), state_path(output)
    foreign = [p for p in output.parent.glob(f"{glob.escape(output.name)}.part-*-of-*") if not p.name.endswith(STATE_SUFFIX)
               and not p.name.endswith(f"-of-{shard.world_size:05d}")]  # fmt: skip
    if overwrite:
        if shard.is_main:
            for stale in (
                *foreign,
                *map(state_path, foreign),
                *((output, final) if shard.world_size > 1 else ()),
            ):
                stale.unlink(missing_ok=True)
    elif resume:
        if final.exists():
            state = read_state(final)
            check_identity(state, identity, output)
            if state.get("complete"):
                verified_prefix(output, state)
                if shard.is_main:  # parts a merge killed before it removed them
                    for rank in range(shard.world_size if shard.world_size > 1 else 0):
                        part = part_path(output, Shard(rank, shard.world_size))
                        part.unlink(missing_ok=True)
                        state_path(part).unlink(missing_ok=True)
                return None
            if shard.world_size > 1:
                raise ValueError(f"{str(output)!r} was started by one process: resume it without torchrun")
        if foreign:
            n = int(foreign[0].name.rsplit("-of-", 1)[1])
            raise ValueError(
                f"{str(output)!r} was started by {n} processes: resume it with torchrun --nproc_per_node {n}"
            )
        mine = state_path(part_path(output, shard))
        if shard.world_size > 1 and output.exists() and not mine.exists():
            raise ValueError(
                f"{str(output)!r} exists but has no state file, so it cannot be resumed: pass --overwrite"
            )
    elif output.exists() or final.exists() or foreign:
        raise ValueError(
            f"{str(output)!r} exists: pass --resume to continue it or --overwrite to start again"
        )
    return ChunkLog.open(part_path(output, shard), identity, shard, resume=resume, overwrite=overwrite)


def run_chunks(
    log: ChunkLog | None,
    reader: ChunkReader,
    predict: Callable[[list[Any]], Sequence[Any]],
    *,
    stream: Any = None,
    progress: bool = True,
    total: int | None = None,
) -> int:
    """Predict each chunk ``reader`` yields and write its lines to ``log`` (or to ``stream``, unresumable);
    returns the rows in the input.

    Args:
        log: Where to append, or ``None`` to write to ``stream``.
        reader: The chunks to do (from ``log.next_chunk``, every ``world size``-th).
        predict: One prediction per row of a chunk, in order.
        stream: A text stream, for ``log=None``.
        progress: Show a progress bar (on stderr).
        total: Rows this process does in all, for the bar.
    """
    size = reader.chunk_rows
    done = log.rows_done if log else 0
    with tqdm(
        total=total, initial=done, unit="row", desc="predicting", disable=not progress, file=sys.stderr
    ) as bar:
        for chunk, rows in reader:
            predictions = predict(rows)
            if len(predictions) != len(rows):
                raise RuntimeError(f"chunk {chunk}: {len(predictions)} predictions for {len(rows)} rows")
            lines = "".join(
                json.dumps({"row": chunk * size + i, **prediction_dict(p)}) + "\n"
                for i, p in enumerate(predictions)
            )
            if log is None:
                stream.write(lines)
                stream.flush()
            else:
                log.append(chunk, lines, len(rows))
            bar.update(len(rows))
    assert reader.total_rows is not None  # the reader ran to the end
    if log is not None:
        log.finish(reader.total_rows)
    return reader.total_rows


def merge_parts(
    output: str | os.PathLike[str], identity: Mapping[str, Any], world_size: int, chunk_rows: int
) -> int:
    """Merge the complete parts of ``world_size`` processes into ``output`` in row order (atomically), record it
    complete, and delete the parts; returns the rows.

    Raises:
        ValueError: a part missing, incomplete, of another input or settings, or not holding its rows in order.
    """
    output = Path(output)
    parts = [part_path(output, Shard(rank, world_size)) for rank in range(world_size)]
    states = [read_state(state_path(p)) for p in parts]
    for rank, (path, state) in enumerate(zip(parts, states)):
        check_identity(state, identity, path)
        if state["shard"] != {"rank": rank, "world_size": world_size}:
            raise ValueError(
                f"part {str(path)!r} records another process ({state['shard']}): pass --overwrite"
            )
        if not state.get("complete"):
            raise ValueError(f"part {str(path)!r} is not complete: resume the run with --resume")
        verified_prefix(path, state)
    total = states[0]["total_rows"]
    if any(s["total_rows"] != total for s in states):
        raise ValueError(f"the parts of {str(output)!r} saw inputs of different lengths: pass --overwrite")
    # a temp file beside the output, named as softprompt.utils.atomic names them (so a killed merge's is cleaned up);
    # os.open applies the umask, as for any new file
    tmp = output.parent / f".{output.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    digest, written = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out, contextlib.ExitStack() as stack:
            files = [stack.enter_context(open(p, "rb")) for p in parts]
            for row in range(total):  # row r lies in chunk r // chunk_rows, of process (r // chunk_rows) % N
                line = files[(row // chunk_rows) % world_size].readline()
                if not line.startswith(b'{"row": %d,' % row) or not line.endswith(b"\n"):
                    raise ValueError(
                        f"the parts of {str(output)!r} do not hold row {row} where expected: pass --overwrite"
                    )
                out.write(line)
                digest.update(line)
                written += len(line)
            if any(f.read(1) for f in files):
                raise ValueError(
                    f"the parts of {str(output)!r} hold more than {total} rows: pass --overwrite"
                )
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    chunks = -(-total // chunk_rows)
    atomic_write_json(state_path(output), {
        **identity, "version": STATE_VERSION, "shard": {"rank": 0, "world_size": 1}, "merged_from": world_size,
        "next_chunk": chunks, "rows_done": total, "output_bytes": written, "output_sha256": digest.hexdigest(),
        "complete": True, "total_rows": total,
    })  # fmt: skip
    for path in parts:
        path.unlink(missing_ok=True)
        state_path(path).unlink(missing_ok=True)
    return total


def predict_input(
    path: str | os.PathLike[str],
    output: str | os.PathLike[str] | None,
    load: Callable[[], tuple[Callable[[list[Any]], Sequence[Any]], bool]],
    settings: Mapping[str, Any],
    *,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    resume: bool = False,
    overwrite: bool = False,
    shard: Shard | None = None,
    stream: Any = None,
    progress: bool = True,
) -> dict[str, Any] | None:
    """Predict every row of the table ``path`` into ``output`` (JSON lines), a chunk at a time; what
    ``softprompt predict --input`` does. Under ``torchrun`` each process does its share and process 0 merges.

    Args:
        path: A ``.parquet``, ``.jsonl`` or ``.csv`` file (:mod:`softprompt.stream.input`).
        output: The JSON lines file, or ``None`` to write to ``stream`` (one process, no resuming).
        load: Called once, when there is something to predict: ``(predict, question_answering)``, where
            ``predict(rows)`` gives one prediction per row (a text or a ``(text, text_pair)`` tuple).
        settings: What else changes the predictions (model, prompt, lengths, precision...): recorded, and a
            resumed run must match it.
        text_column: As for :func:`~softprompt.stream.input.resolve_columns`.
        text_pair_column: As for :func:`~softprompt.stream.input.resolve_columns`.
        chunk_rows: Rows read, predicted and written at a time; a resumed run goes on after its last whole chunk.
        resume: Continue ``output`` after its last complete chunk (same input, settings and processes).
        overwrite: Start ``output`` again.
        shard: This process's share (default: from ``torchrun``'s environment).
        stream: Where lines go without ``output`` (default ``sys.stdout``).
        progress: A progress bar on stderr (process 0 only).

    Returns:
        On process 0, ``{"output", "rows", "processes", "truncated_rows"}`` and, for one process,
        ``"resumed_at_row"``; ``None`` on the others.

    Raises:
        ValueError: a bad input or output (see :func:`prepare_output`), or flags that exclude each other.

    Examples:
        >>> predict_input("in.parquet", "preds.jsonl", load, {"model": "m"}, chunk_rows=1024)  # doctest: +SKIP
        {'output': 'preds.jsonl', 'rows': 10000, 'processes': 1, 'truncated_rows': 0, 'resumed_at_row': 0}
    """
    shard = Shard.from_env() if shard is None else shard
    fmt = input_format(path)
    if not isinstance(chunk_rows, int) or isinstance(chunk_rows, bool) or chunk_rows < 1:
        raise ValueError(f"--chunk-rows must be a positive number, got {chunk_rows!r}")
    if resume and overwrite:
        raise ValueError(
            "--resume and --overwrite exclude each other: continue the output, or start it again"
        )
    if output is None:
        if resume or overwrite or shard.world_size > 1:
            raise ValueError(
                "--resume, --overwrite and torchrun need --output (predictions go to stdout without it)"
            )
    else:
        check_file_target(output, "--output")
        if Path(output).suffix.lower() == ".parquet":
            raise ValueError(
                f"--output {str(output)!r}: predictions are written as JSON lines; name it .jsonl"
            )
        if os.path.realpath(output) == os.path.realpath(path):
            raise ValueError(f"--output {str(output)!r} is the --input file")
    identity = {
        "input": input_fingerprint(path),
        "settings": {**settings, "text_column": text_column, "text_pair_column": text_pair_column,
                     "chunk_rows": chunk_rows},
    }  # fmt: skip
    with process_group(shard):
        log = prepare_output(output, identity, shard, resume=resume, overwrite=overwrite) if output else None
        if output is not None and log is None:  # complete already
            total = read_state(state_path(output))["total_rows"]
            return (
                {"output": str(output), "rows": total, "processes": shard.world_size, "resumed_at_row": total}
                if shard.is_main
                else None
            )
        start = log.rows_done if log else 0
        total, truncated = None, 0
        if log is None or not log.complete:
            predict, question_answering = load()
            columns = resolve_columns(
                path, text_column, text_pair_column, question_answering=question_answering
            )
            first = log.next_chunk if log else 0
            reader = ChunkReader(path, columns, chunk_rows, first_chunk=first, step=shard.world_size)
            known = pq.ParquetFile(path).metadata.num_rows if fmt == "parquet" else None
            share = (
                None if known is None else start + _rows_in_chunks(known, chunk_rows, first, shard.world_size)
            )
            total = run_chunks(log, reader, predict, stream=stream or sys.stdout, progress=progress and shard.is_main,
                               total=share)  # fmt: skip
            truncated = reader.truncated_rows
        barrier(shard)  # every part is complete
        if not shard.is_main:
            return None
        if shard.world_size > 1:
            total = merge_parts(output, identity, shard.world_size, chunk_rows)
        elif total is None:  # this process's part was complete already
            total = log.total_rows
    summary = {
        "output": None if output is None else str(output),
        "rows": total,
        "processes": shard.world_size,
        # texts longer than MAX_TEXT_CHARS were cut to it before tokenizing (this process's rows, this sitting)
        "truncated_rows": truncated,
    }
    return summary if shard.world_size > 1 else {**summary, "resumed_at_row": start}


def _rows_in_chunks(total: int, size: int, first: int, step: int) -> int:
    """Rows in chunks ``first, first + step, ...`` of a ``total``-row input."""
    return sum(min(size, total - k * size) for k in range(first, -(-total // size), step))
