"""Atomic file writes: a temp file in the target folder, fsync, then ``os.replace``.

A crash or a full disk mid-write leaves the previous file untouched, never a half-written one. An
existing file keeps its permissions; a symbolic link is written through (the file it points to is
replaced, the link stays) where the caller named that one file, and replaced by a plain file with
``follow_links=False``, which every writer of a whole folder uses (a link inside a folder, as in a cloned
repo or the Hub cache's snapshots, must not turn "save here" into "overwrite there"); temp files that a
killed writer left behind are removed by the next write to the same file. The process umask is never
changed (another thread could create files meanwhile).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_dir_target",
    "check_file_target",
    "check_replaceable",
    "replace_dir",
]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, follow_links: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically, creating parent folders; returns the path.

    ``follow_links=False``: a symbolic link at ``path`` is replaced by the new file (the file it pointed
    to is left alone); folders above ``path`` are followed either way.

    Examples:
        >>> import tempfile, pathlib
        >>> p = atomic_write_bytes(pathlib.Path(tempfile.mkdtemp()) / "x.bin", b"abc")
        >>> p.read_bytes()
        b'abc'
    """
    if follow_links:
        target = Path(os.path.realpath(path))  # through a symlink: replace the file, keep the link
    else:
        target = Path(os.path.realpath(Path(path).parent)) / Path(path).name  # the link itself is replaced
    if target.is_dir() and not target.is_symlink():
        raise IsADirectoryError(f"cannot write to {str(path)!r}: it is a directory; give a file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        if target.is_symlink():  # only where links are not followed: the new file is a file of its own
            raise FileNotFoundError
        mode = stat.S_IMODE(target.stat().st_mode)  # an existing file keeps its permissions
    except FileNotFoundError:
        mode = 0o666 & ~_umask()  # a new one gets the usual ones (mkstemp makes 0600)
    _remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return Path(path)


def _umask() -> int:
    """The process umask, read without setting it where ``/proc`` tells it (Linux); elsewhere read by
    setting and restoring it, the one way POSIX offers."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _remove_stale_temps(target: Path) -> None:
    """Delete ``.<name>.<pid>.*.tmp`` files of ``target`` whose writing process no longer exists."""
    prefix = f".{target.name}."
    for tmp in target.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = tmp.name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                tmp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True


def atomic_write_text(path: str | os.PathLike[str], text: str, *, follow_links: bool = True) -> Path:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"), follow_links=follow_links)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON (keys sorted) atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def _file_in_the_way(path: Path) -> Path | None:
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def check_file_target(path: str | os.PathLike[str], what: str = "output file") -> Path:
    """Refuse, before any work, a file target that is a folder or lies under a file.

    Raises:
        ValueError: naming ``what`` and the obstacle.
    """
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{what} {str(target)!r} is a folder; give a file name")
    blocker = _file_in_the_way(target)
    if blocker is not None:
        raise ValueError(
            f"{what} {str(target)!r} cannot be written: {str(blocker)!r} is a file, not a folder"
        )
    return target


def check_dir_target(path: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Refuse, before any work, a folder target that is a file or lies under a file."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ValueError(f"{what} {str(target)!r} is a file; give a folder")
    blocker = _file_in_the_way(target)
    if blocker is not None:
        raise ValueError(f"{what} {str(target)!r} cannot be made: {str(blocker)!r} is a file, not a folder")
    return target


def check_replaceable(
    target: str | os.PathLike[str], *, overwrite: bool, flag: str = "overwrite=True"
) -> Path:
    """Refuse, before any work, a folder :func:`replace_dir` would not write: a link, a file, a non-empty folder
    without ``overwrite`` (``flag`` names how the caller asks for it).

    Raises:
        ValueError: naming the obstacle.

    Examples:
        >>> import tempfile, pathlib
        >>> check_replaceable(pathlib.Path(tempfile.mkdtemp()) / "new", overwrite=False).name
        'new'
    """
    target = Path(target)
    if target.is_symlink():
        raise ValueError(f"{str(target)!r} is a symbolic link; give the folder itself")
    check_dir_target(target)
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise ValueError(f"{str(target)!r} is not empty: pass {flag} to replace it")
    return target


def replace_dir(
    target: str | os.PathLike[str], write: Callable[[Path], None], *, overwrite: bool = False
) -> Path:
    """Build a whole folder with ``write(stage)`` in a temporary sibling, then move it to ``target`` at once.

    A failure in ``write`` (or a crash) leaves ``target`` as it was, never half-written; every file in
    the stage is flushed to disk before the move. An existing ``target`` is replaced only with
    ``overwrite`` (an empty one always), and only once the new folder is complete; a symbolic link at
    ``target`` is refused (a folder written here must not land elsewhere).

    Raises:
        ValueError: ``target`` is a link or a file, or a non-empty folder without ``overwrite``.

    Examples:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> out = replace_dir(root / "model", lambda stage: (stage / "a.txt").write_text("x"))
        >>> sorted(p.name for p in out.iterdir())
        ['a.txt']
    """
    target = check_replaceable(target, overwrite=overwrite)
    parent = Path(os.path.realpath(target.parent))
    parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    old: Path | None = None
    try:
        os.chmod(stage, 0o777 & ~_umask())  # mkdtemp makes 0700
        write(stage)
        for path in stage.rglob("*"):
            if path.is_file() and not path.is_symlink():
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
        final = parent / target.name
        if final.is_dir():
            if any(final.iterdir()):
                old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=parent))
                os.replace(final, old / target.name)
            else:
                final.rmdir()
        os.replace(stage, final)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if old is not None and (old / target.name).exists() and not (parent / target.name).exists():
            os.replace(old / target.name, parent / target.name)  # put the old folder back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target
