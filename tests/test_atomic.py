"""Atomic writes (softprompt/atomic.py): permissions kept, symlinks written through, no umask change,
temp files of killed writers cleaned up."""

import os
import stat
import subprocess
import sys
import threading

import pytest

from softprompt.utils.atomic import atomic_write_bytes


def test_an_existing_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "secret.safetensors"
    path.write_bytes(b"old")
    path.chmod(0o600)
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_new_file_gets_the_umask_permissions(tmp_path):
    mask = os.umask(0o027)
    try:
        atomic_write_bytes(tmp_path / "new.bin", b"x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "new.bin").stat().st_mode) == 0o640


def test_a_symlink_is_written_through(tmp_path):
    real = tmp_path / "store" / "prompt.safetensors"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "current.safetensors"
    link.symlink_to(real)
    assert atomic_write_bytes(link, b"new") == link
    assert link.is_symlink() and real.read_bytes() == b"new"


def test_the_umask_is_never_changed(tmp_path, monkeypatch):
    """Another thread creating files meanwhile must never see umask 0 (it got 0o666 files before)."""
    calls = []
    monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or 0o022)
    threads = [
        threading.Thread(target=atomic_write_bytes, args=(tmp_path / f"{i}.bin", b"x")) for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [] and len(list(tmp_path.glob("*.bin"))) == 8


def test_temp_files_of_dead_writers_are_removed(tmp_path):
    target = tmp_path / "prompt.safetensors"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)  # that process has exited
    stale = tmp_path / f".prompt.safetensors.{dead_pid}.abc123.tmp"
    live = tmp_path / f".prompt.safetensors.{os.getpid()}.def456.tmp"  # a writer still running: kept
    other = tmp_path / f".other.safetensors.{dead_pid}.x.tmp"  # another file's: not ours to touch
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    atomic_write_bytes(target, b"done")
    assert not stale.exists() and live.exists() and other.exists()
    assert target.read_bytes() == b"done"


def test_replace_dir_builds_whole_folders_and_refuses_links(tmp_path):
    from softprompt.utils.atomic import replace_dir

    def write(stage):
        (stage / "a.txt").write_text("new")

    target = tmp_path / "out"
    target.mkdir()  # an empty folder is filled without overwrite
    replace_dir(target, write)
    assert (target / "a.txt").read_text() == "new"
    with pytest.raises(ValueError, match="not empty"):
        replace_dir(target, write)
    (tmp_path / "elsewhere").mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ValueError, match="symbolic link"):
        replace_dir(link, write, overwrite=True)
    assert list((tmp_path / "elsewhere").iterdir()) == []

    def fail(stage):
        (stage / "half.txt").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        replace_dir(target, fail, overwrite=True)
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]  # the old folder, as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "link", "out"]  # no stage, no backup
