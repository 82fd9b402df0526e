"""``softprompt.utils.heap``: inside ``retained_heap`` a large block is served again without page faults.

The test watches the kernel's own count of this process's minor page faults: a 64 MiB tensor (above
glibc's largest mmap threshold, 32 MiB) faults its ~16,000 pages in every time it is made outside the
block, and once inside it (the second time reuses the heap's pages). Linux with glibc only.
"""

from __future__ import annotations

import resource

import pytest
import torch

from softprompt import predict_logits
from softprompt.utils import heap
from tests.conftest import make_model

BLOCK = 16 * 2**20  # floats: 64 MiB, 16,384 pages of 4 KiB
PAGES = BLOCK * 4 // 4096

glibc_only = pytest.mark.skipif(heap.heap_unavailable() is not None, reason=str(heap.heap_unavailable()))


def _faults_of_one_block() -> int:
    """Minor page faults while a 64 MiB tensor is made, written and freed."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = torch.ones(BLOCK)  # every page written
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@glibc_only
def test_a_large_block_is_reused_inside_and_faulted_in_again_outside():
    assert _faults_of_one_block() > PAGES // 2  # glibc's default: a fresh mapping each time
    assert _faults_of_one_block() > PAGES // 2
    with heap.retained_heap():
        _faults_of_one_block()  # the heap grows: these pages are new
        assert _faults_of_one_block() < PAGES // 10  # the second block reuses them
    assert _faults_of_one_block() > PAGES // 2  # defaults back, the kept pages returned


@glibc_only
def test_nested_blocks_keep_the_heap_until_the_last_one_leaves():
    with heap.retained_heap():
        with heap.retained_heap():
            _faults_of_one_block()
        assert _faults_of_one_block() < PAGES // 10  # the inner block's exit restored nothing
    assert _faults_of_one_block() > PAGES // 2


@glibc_only
def test_disabled_is_a_no_op():
    with heap.retained_heap(enabled=False):
        _faults_of_one_block()
        assert _faults_of_one_block() > PAGES // 2


def test_the_users_glibc_tunables_stand(monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=1048576")
    assert "GLIBC_TUNABLES" in heap.heap_unavailable()
    with heap.retained_heap():  # a no-op, not an error
        pass


def test_the_default_follows_the_switch_then_the_measured_kinds(monkeypatch):
    monkeypatch.setenv(heap.ENV_SWITCH, "1")
    assert heap.retained_heap_default()
    monkeypatch.setenv(heap.ENV_SWITCH, "0")
    assert not heap.retained_heap_default()
    monkeypatch.delenv(heap.ENV_SWITCH)
    monkeypatch.setattr(heap, "MEASURED_FASTER", ())
    assert not heap.retained_heap_default()  # an unmeasured kind is off


def test_predictions_are_the_same_with_and_without_the_kept_heap(tokenizer, monkeypatch):
    model = make_model("bert", "seq")
    texts = ["great film , superb acting", "dull", "the worst movie i ever watch really"] * 3
    monkeypatch.setenv(heap.ENV_SWITCH, "0")
    off = predict_logits(model, tokenizer, texts, batch_size=2)
    monkeypatch.setenv(heap.ENV_SWITCH, "1")
    on = predict_logits(model, tokenizer, texts, batch_size=2)
    assert torch.equal(on, off)  # where the memory comes from changes no arithmetic
