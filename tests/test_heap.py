"""``softprompt.utils.heap``: inside ``retained_heap`` a large block is served again without page faults.

The test watches the kernel's own count of this process's minor page faults while a 64 MiB block (above
glibc's largest mmap threshold, 32 MiB) is taken with ``malloc``, written and freed: outside the block its
~16,000 pages are faulted in every time; inside, only the first time. Plain ``malloc`` of one size, so the
test sees the setting itself: PyTorch's 64-byte-aligned requests are each a little larger than the block
they freed, and reuse it only once the heap's free blocks have merged (benchmarks/heap.py measures that on
real steps). Linux with glibc only.
"""

from __future__ import annotations

import ctypes
import resource
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from softprompt import load_data, predict_logits, tokenize_dataset
from softprompt.finetune import finetune
from softprompt.training import assembly
from softprompt.utils import heap
from tests.conftest import make_model

BLOCK = 64 * 2**20  # bytes: 16,384 pages of 4 KiB
PAGES = BLOCK // 4096

glibc_only = pytest.mark.skipif(heap.heap_unavailable() is not None, reason=str(heap.heap_unavailable()))


def _faults_of_one_block() -> int:
    """Minor page faults while a 64 MiB block is taken with ``malloc``, written whole and freed."""
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(BLOCK)
    assert block
    ctypes.memset(block, 1, BLOCK)  # every page written
    libc.free(block)
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


@glibc_only
def test_released_pages_are_faulted_in_again():
    with heap.retained_heap():
        _faults_of_one_block()
        assert _faults_of_one_block() < PAGES // 10
        assert heap.release_free_pages()
        assert _faults_of_one_block() > PAGES // 2  # the kept pages went back to the system


def test_training_with_a_kept_heap_trims_it_every_few_steps_and_after_evaluations(monkeypatch):
    calls = []
    monkeypatch.setattr(assembly, "release_free_pages", lambda: calls.append(1) or True)
    trim = assembly.TrimHeap(every=4)
    for step in range(1, 13):
        trim.on_step_end(None, SimpleNamespace(global_step=step), None)
    assert len(calls) == 3  # steps 4, 8, 12
    trim.on_evaluate(None, None, None)
    assert len(calls) == 4


def test_fine_tuning_with_the_heap_kept_trains_the_same_weights(tokenizer, tmp_path, monkeypatch):
    """``SOFTPROMPT_RETAIN_HEAP=1`` changes where the memory comes from, not one trained weight."""
    frame = pd.DataFrame({"text": ["great film , superb", "dull", "the worst movie", "superb acting"] * 4,
                          "label": [1, 0, 0, 1] * 4})  # fmt: skip
    data = load_data(frame, eval_split=None, label_names=["neg", "pos"])
    train = tokenize_dataset(data.train, tokenizer, max_length=32)
    weights = {}
    for switch in ("0", "1"):
        monkeypatch.setenv(heap.ENV_SWITCH, switch)
        model = make_model("bert", "seq")
        finetune(model, tokenizer, train, output_dir=tmp_path / switch, num_train_epochs=1,
                 learning_rate=5e-3, per_device_train_batch_size=4, disable_tqdm=True)  # fmt: skip
        weights[switch] = {k: v.clone() for k, v in model.state_dict().items()}
    assert heap.retained_heap_for_training()  # the second run kept the heap (with its trims)
    assert weights["0"].keys() == weights["1"].keys()
    assert all(torch.equal(weights["0"][k], weights["1"][k]) for k in weights["0"])
