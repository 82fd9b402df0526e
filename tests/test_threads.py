"""``--threads`` and the oversubscription warning, against real busy processes."""

import logging
import subprocess
import sys
import time

import pytest
import torch

from softprompt.cli import main
from softprompt.utils.threads import apply_threads, busy_threads, oversubscription_warning, parse_threads


@pytest.fixture
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_parse_threads():
    assert (parse_threads("3"), parse_threads("auto"), parse_threads(None)) == (3, "auto", None)
    for bad in ("0", "-1", "many", "1.5"):
        with pytest.raises(ValueError, match="positive number or 'auto'"):
            parse_threads(bad)


def test_the_warning_counts_threads_against_cores():
    assert oversubscription_warning(2, cores=2, busy=0) is None
    assert oversubscription_warning(1, cores=2, busy=1) is None
    message = oversubscription_warning(2, cores=2, busy=1)
    assert message is not None and "--threads 1" in message
    assert "--threads 1" in oversubscription_warning(4, cores=2, busy=5)  # never fewer than one thread


def test_apply_threads_sets_the_pool(keep_threads):
    assert apply_threads(1) == 1 == torch.get_num_threads()
    assert apply_threads("auto") >= 1


@pytest.mark.skipif(busy_threads() is None, reason="no /proc/loadavg")
def test_busy_processes_are_seen_and_warned_about(keep_threads, caplog):
    spin = "import time\nend = time.time() + 8\nwhile time.time() < end: pass"
    procs = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(2)]
    try:
        time.sleep(1.0)
        assert busy_threads() >= 2
        torch.set_num_threads(2)
        with caplog.at_level(logging.WARNING, logger="softprompt.utils.threads"):
            apply_threads(None)
        assert "other processes are running" in caplog.text
        assert apply_threads("auto") == 1  # never fewer than one
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_the_flag_is_checked_in_one_line(capsys, tmp_path):
    assert main(["predict", "--model", str(tmp_path), "--threads", "zero", "text"]) == 2
    assert "--threads must be a positive number" in capsys.readouterr().err
