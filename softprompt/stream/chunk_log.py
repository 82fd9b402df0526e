"""An output file written a chunk at a time, and the state file that lets a killed run resume it.

After each chunk its lines are appended to the output and fsynced, then the state file ``OUTPUT.state.json``
is replaced atomically (:func:`softprompt.utils.atomic.atomic_write_json`): the next chunk, the rows done, the
output's length and SHA-256, the input's fingerprint and the settings that change results. Resuming checks
the fingerprint and settings, checks the output's recorded part against its hash, cuts off what follows it
(a kill can leave part of a chunk there) and goes on with the next chunk.

Examples:
    >>> log = ChunkLog.open("preds.jsonl", identity, Shard(), resume=True)  # doctest: +SKIP
    >>> log.next_chunk, log.rows_done  # doctest: +SKIP
    (3, 12288)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from softprompt.utils.atomic import atomic_write_json
from softprompt.utils.inputs import parse_json, read_bounded_text
from softprompt.utils.sharding import Shard

__all__ = [
    "STATE_SUFFIX",
    "STATE_VERSION",
    "ChunkLog",
    "check_identity",
    "check_progress",
    "input_fingerprint",
    "model_fingerprint",
    "part_path",
    "read_state",
    "state_path",
    "verified_prefix",
]

STATE_SUFFIX = ".state.json"
STATE_VERSION = 1
_EDGE_BYTES = 1 << 20  # the input's first and last MiB are hashed: a rewrite of the same size shows there


def state_path(path: str | os.PathLike[str]) -> Path:
    """The state file beside an output (or part) file: ``preds.jsonl`` -> ``preds.jsonl.state.json``."""
    return Path(f"{os.fspath(path)}{STATE_SUFFIX}")


def part_path(output: str | os.PathLike[str], shard: Shard) -> Path:
    """The file process ``shard.rank`` writes: the output itself for one process, else ``OUTPUT.part-R-of-N``."""
    if shard.world_size == 1:
        return Path(output)
    return Path(f"{os.fspath(output)}.part-{shard.rank:05d}-of-{shard.world_size:05d}")


def input_fingerprint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What identifies an input file: its real path, size, modification time and a SHA-256 of its ends."""
    real = os.path.realpath(path)
    info = os.stat(real)
    digest = hashlib.sha256()
    with open(real, "rb") as fh:
        digest.update(fh.read(_EDGE_BYTES))
        if info.st_size > _EDGE_BYTES:
            fh.seek(max(_EDGE_BYTES, info.st_size - _EDGE_BYTES))
            digest.update(fh.read())
    return {
        "path": real,
        "size": info.st_size,
        "mtime_ns": info.st_mtime_ns,
        "edges_sha256": digest.hexdigest(),
    }


def model_fingerprint(model: str, prompt: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """What identifies the artefact that predicts: ``model`` (a local folder by its real path and each top-level
    file's size and modification time; a Hub id by name) and the prompt file's SHA-256.

    Examples:
        >>> model_fingerprint("bert-base-uncased")
        {'model': 'bert-base-uncased', 'prompt': None, 'prompt_sha256': None}
    """
    folder = Path(model)
    out: dict[str, Any] = {"model": model}
    if folder.is_dir():
        out["model"] = os.path.realpath(folder)
        stats = {f.name: f.stat() for f in sorted(folder.iterdir()) if f.is_file()}
        out["model_files"] = {name: [st.st_size, st.st_mtime_ns] for name, st in stats.items()}
    digest = None
    if prompt is not None:
        digest = hashlib.sha256(Path(prompt).read_bytes()).hexdigest()  # a prompt file is small
    return {**out, "prompt": None if prompt is None else os.path.realpath(prompt), "prompt_sha256": digest}


def _first_difference(old: Any, new: Any, key: str = "") -> str | None:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for name in sorted(set(old) | set(new)):
            found = _first_difference(old.get(name), new.get(name), f"{key}.{name}" if key else name)
            if found:
                return found
        return None
    return None if old == new else f"{key} was {old!r}, now {new!r}"


class ChunkLog:
    """One output file, appended a chunk at a time, and its state file (see the module docstring).

    Attributes:
        path: The file written.
        next_chunk: The next chunk to predict (chunks ``next_chunk, next_chunk + world size, ...`` remain).
        rows_done: Rows written so far.
        complete: Whether every chunk of this process is written.
    """

    def __init__(
        self, path: Path, identity: Mapping[str, Any], shard: Shard, state: Mapping[str, Any]
    ) -> None:
        self.path, self.identity, self.shard = path, dict(identity), shard
        self.next_chunk: int = state["next_chunk"]
        self.rows_done: int = state["rows_done"]
        self.complete: bool = state["complete"]
        self.total_rows: int | None = state.get("total_rows")
        self.chunk_rows: int | None = state.get("chunk_rows")  # the largest chunk written: the chunk size
        self._bytes: int = state["output_bytes"]
        self._hash = hashlib.sha256()
        self._fresh = False

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], identity: Mapping[str, Any], shard: Shard, *, resume: bool = False,
        overwrite: bool = False,
    ) -> ChunkLog:  # fmt: skip
        """Start ``path`` afresh, or (``resume``) continue it after its last complete chunk.

        Raises:
            ValueError: ``path`` or its state file exists without ``resume`` or ``overwrite`` (which replaces
                them once the first chunk is written); with ``resume``, a file without a state file, a state of
                another input, settings or number of processes, or a file that no longer holds what the state
                records.
        """
        path, state_file = Path(path), state_path(path)
        if not (resume or overwrite) and (path.exists() or state_file.exists()):
            raise ValueError(
                f"{str(path)!r} exists: pass --resume to continue it or --overwrite to start again"
            )
        if resume and state_file.exists():
            state = read_state(state_file)
            check_identity(state, identity, path)
            if state["shard"] != {"rank": shard.rank, "world_size": shard.world_size}:
                raise ValueError(
                    f"{str(path)!r} was written as process {state['shard']['rank']} of {state['shard']['world_size']}, "
                    f"not {shard.rank} of {shard.world_size}: resume it with as many processes as it started with"
                )
            log = cls(path, identity, shard, state)
            log._hash = verified_prefix(path, state)
            check_progress(state, identity, shard, path)
            return log
        if resume and path.exists():
            raise ValueError(
                f"{str(path)!r} exists but has no state file {state_file.name!r}, so it cannot be resumed: "
                "pass --overwrite to start again"
            )
        log = cls(path, identity, shard, _fresh_state(shard))
        log._fresh = True  # nothing is written (nor an old file replaced) before the first chunk is done
        return log

    def append(self, chunk: int, lines: str, rows: int) -> None:
        """Write chunk ``chunk``'s lines (``rows`` of them), fsync them, then record the chunk as done (atomically)."""
        data = lines.encode("utf-8")
        self._start()
        with open(self.path, "ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        self._hash.update(data)
        self._bytes += len(data)
        self.rows_done += rows
        self.chunk_rows = max(self.chunk_rows or 0, rows)
        self.next_chunk = chunk + self.shard.world_size
        self._save()

    def finish(self, total_rows: int) -> None:
        """Record that every chunk is written; ``total_rows``: the rows in the whole input."""
        self._start()
        self.complete, self.total_rows = True, total_rows
        self._save()

    def _start(self) -> None:
        """A fresh log's first write: its state (no rows done) replaces any old one, then the file is emptied."""
        if self._fresh:
            self._save()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_bytes(b"")
            self._fresh = False

    def _save(self) -> None:
        atomic_write_json(
            state_path(self.path),
            {
                **self.identity, "version": STATE_VERSION, "shard": {"rank": self.shard.rank, "world_size": self.shard.world_size},
                "next_chunk": self.next_chunk, "rows_done": self.rows_done, "output_bytes": self._bytes,
                "output_sha256": self._hash.hexdigest(), "complete": self.complete, "total_rows": self.total_rows,
                "chunk_rows": self.chunk_rows,
            },
        )  # fmt: skip


def _fresh_state(shard: Shard) -> dict[str, Any]:
    return {"next_chunk": shard.rank, "rows_done": 0, "output_bytes": 0, "complete": False}


def read_state(path: Path) -> dict[str, Any]:
    """A state file's contents.

    Raises:
        ValueError: not a state file of this version.
    """
    try:
        state = parse_json(read_bounded_text(path, "state file"), f"state file {str(path)!r}")
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"state file {str(path)!r} cannot be read ({exc}); pass --overwrite to start again"
        ) from exc
    needed = {
        "version",
        "input",
        "settings",
        "shard",
        "next_chunk",
        "rows_done",
        "output_bytes",
        "output_sha256",
    }
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION or not needed <= set(state):
        raise ValueError(f"{str(path)!r} is not a state file of this softprompt version; pass --overwrite")
    return state


def check_identity(state: Mapping[str, Any], identity: Mapping[str, Any], path: Path) -> None:
    """Refuse to continue ``path`` for another input or with other settings than it was started with."""
    for part in ("input", "settings"):
        difference = _first_difference(state.get(part), identity[part])
        if difference:
            raise ValueError(
                f"--resume: {str(path)!r} was started with another {part} ({difference}); resume with the same "
                "input and flags, or pass --overwrite to start again"
            )


def check_progress(state: Mapping[str, Any], identity: Mapping[str, Any], shard: Shard, path: Path) -> None:
    """The state's counters agree with each other: a part of ``rows_done`` rows has written the chunks
    ``rank, rank + N, ...`` (all whole but perhaps the input's last), so its next chunk is
    ``rank + N * ceil(rows_done / chunk_rows)``. A state file is checked, not trusted: an edited ``next_chunk``
    would write rows twice or skip some.

    Raises:
        ValueError: a counter that is not a whole number, or counters that disagree.
    """
    counters = {key: state[key] for key in ("next_chunk", "rows_done", "output_bytes")}
    bad = {k: v for k, v in counters.items() if isinstance(v, bool) or not isinstance(v, int) or v < 0}
    if bad:
        raise ValueError(f"{str(path)!r}: its state file holds {bad}, not whole numbers; pass --overwrite")
    chunk_rows = identity.get("settings", {}).get("chunk_rows") or state.get("chunk_rows")
    if state.get("complete") or not chunk_rows:
        return
    expected = shard.rank + shard.world_size * -(-counters["rows_done"] // chunk_rows)
    if counters["next_chunk"] != expected:
        raise ValueError(
            f"{str(path)!r}: its state file says the next chunk is {counters['next_chunk']} after "
            f"{counters['rows_done']} rows in chunks of {chunk_rows}, but that is chunk {expected}; it was edited or "
            "damaged: pass --overwrite"
        )


def verified_prefix(path: Path, state: Mapping[str, Any]) -> Any:
    """The running SHA-256 (a ``hashlib`` object) of the recorded part of ``path``, checked against the state; cuts off what follows it.

    Raises:
        ValueError: ``path`` is shorter than recorded, or its recorded part changed.
    """
    length = state["output_bytes"]
    size = path.stat().st_size if path.exists() else 0
    if size < length:
        raise ValueError(
            f"{str(path)!r} holds {size} bytes, less than the {length} its state file records; pass --overwrite"
        )
    digest, left, lines = hashlib.sha256(), length, 0
    if length:
        with open(path, "rb") as fh:
            while left:
                block = fh.read(min(left, 1 << 20))
                digest.update(block)
                lines += block.count(b"\n")
                left -= len(block)
    if digest.hexdigest() != state["output_sha256"]:
        raise ValueError(
            f"{str(path)!r} changed after its state file was written; pass --overwrite to start again"
        )
    if lines != state["rows_done"]:  # one line per row
        raise ValueError(
            f"{str(path)!r}: its state file records {state['rows_done']!r} rows done but the file holds {lines}; "
            "pass --overwrite to start again"
        )
    if size > length or not path.exists():  # a chunk half-written when the run was killed
        with open(path, "ab") as fh:
            fh.truncate(length)
    return digest
