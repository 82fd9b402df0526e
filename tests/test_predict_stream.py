"""`softprompt predict --input FILE`: chunked streaming in constant memory, resuming after a kill, torchrun shards."""

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import tracemalloc

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch.distributed as dist

from softprompt.cli import main
from softprompt.cli.command_args import PredictArgs
from softprompt.cli.loading import load_for_inference
from softprompt.core.predictions import RegressionPrediction
from softprompt.stream.chunk_log import state_path
from softprompt.stream.input import ChunkReader, Columns, resolve_columns
from softprompt.stream.predict import merge_parts, prepare_output, run_chunks
from softprompt.utils.sharding import Shard
from softprompt.wrapper import SoftPromptWrapper
from tests.conftest import WORDS
from tests.test_cli import REPO
from tests.test_trainer import learnable_wrapper

CHUNK = 16
MAX_LENGTH = 32
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread, as in this process: the same float rounding


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory, tokenizer):
    """A tiny model folder, a prompt file on it, and the wrapper `softprompt predict` loads from them."""
    root = tmp_path_factory.mktemp("stream")
    wrapper = learnable_wrapper(tokenizer)
    wrapper.model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    prompt = wrapper.save_prompt(root / "prompt.safetensors")
    loaded, _ = load_for_inference(PredictArgs(model=str(root / "model"), prompt=str(prompt)))
    return root / "model", prompt, loaded


def _flags(artefacts, source, output=None, *extra):
    model_dir, prompt, _ = artefacts
    out = ["--output", str(output)] if output else []
    return ["predict", "--model", str(model_dir), "--prompt", str(prompt), "--input", str(source), *out,
            "--chunk-rows", str(CHUNK), "--max-length", str(MAX_LENGTH), *extra]  # fmt: skip


def _rows(n, seed=0, pairs=False, words=30):
    """Texts of 1-30 words (so length sorting reorders them), some with commas, quotes, line breaks, non-ASCII."""
    rng = random.Random(seed)
    extras = [", and", ' "quoted"', "\nnew line", " café ünï", ""]

    def text(most):
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, most))) + rng.choice(extras)

    return [
        {"id": f"r{i}", "text": text(words), **({"text_pair": text(6)} if pairs else {})} for i in range(n)
    ]


def _write(rows, path, row_group_size=None):
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)
    elif path.suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _items(rows):
    return [(r["text"], r["text_pair"]) if "text_pair" in r else r["text"] for r in rows]


def _lines(start, predictions):
    return "".join(json.dumps({"row": start + i, **p.to_dict()}) + "\n" for i, p in enumerate(predictions))


def _one_error(err):
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("softprompt predict: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in err, lines[-3:]
    return errors[0]


@pytest.mark.parametrize(("suffix", "pairs"), [(".parquet", False), (".jsonl", True), (".csv", True)])
def test_each_format_streams_in_input_order_with_the_predictions_of_predict(artefacts, tmp_path, capsys, monkeypatch,
                                                                     suffix, pairs):  # fmt: skip
    wrapper = artefacts[2]
    rows = _rows(40, seed=1, pairs=pairs)  # 3 chunks: 16, 16, 8
    source = _write(rows, tmp_path / f"in{suffix}", row_group_size=7)  # parquet blocks that straddle chunks
    items = _items(rows)
    whole = wrapper.predict(items, max_length=MAX_LENGTH, batch_size=64)
    by_chunk = "".join(
        _lines(k, wrapper.predict(items[k : k + CHUNK], max_length=MAX_LENGTH, batch_size=64))
        for k in range(0, len(items), CHUNK)
    )
    sizes = []
    original = SoftPromptWrapper.predict

    def counting(self, texts, **kwargs):
        sizes.append(len(texts))
        return original(self, texts, **kwargs)

    monkeypatch.setattr(SoftPromptWrapper, "predict", counting)
    out = tmp_path / "preds.jsonl"
    assert main(_flags(artefacts, source, out)) == 0
    assert json.loads(capsys.readouterr().out) == {
        "output": str(out),
        "rows": 40,
        "processes": 1,
        "truncated_rows": 0,
        "resumed_at_row": 0,
    }
    assert sizes == [16, 16, 8]  # never more than one chunk of rows at a time
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["row"] for g in got] == list(range(40))
    # the predictions of predict() on the whole list (other batches: the floats differ in rounding only)
    assert [g["label"] for g in got] == [p.label for p in whole]
    assert [g["confidence"] for g in got] == pytest.approx([p.confidence for p in whole], abs=1e-5)
    assert out.read_text() == by_chunk  # exactly: each chunk is predict() on its rows
    assert json.loads(state_path(out).read_text())["complete"]

    assert main(_flags(artefacts, source)) == 0  # no --output: the same lines on stdout
    assert capsys.readouterr().out == by_chunk


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".csv"])
def test_reading_holds_one_chunk_not_the_file(tmp_path, suffix):
    rows = _rows(4000, seed=2, words=400)  # 4000 texts of ~1 kB
    source = _write(rows, tmp_path / f"big{suffix}", row_group_size=100)
    whole_file = pa.Table.from_pylist(rows).nbytes  # the texts alone, decoded
    expected, digest = hashlib.sha256(), hashlib.sha256()
    for r in rows:
        expected.update(r["text"].encode())
    arrow_base, arrow_peak, sizes = pa.total_allocated_bytes(), 0, []
    tracemalloc.start()
    try:
        for _, chunk in ChunkReader(source, Columns("text"), CHUNK):
            sizes.append(len(chunk))
            for text in chunk:
                digest.update(text.encode())
            arrow_peak = max(arrow_peak, pa.total_allocated_bytes() - arrow_base)
        python_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert digest.hexdigest() == expected.hexdigest() and max(sizes) == CHUNK and sum(sizes) == len(rows)
    print(f"{suffix}: python peak {python_peak} B, arrow peak {arrow_peak} B, texts {whole_file} B")
    assert python_peak < whole_file / 8, (python_peak, whole_file)
    assert arrow_peak < whole_file / 4, (arrow_peak, whole_file)


def test_killed_run_resumes_to_the_uninterrupted_output(artefacts, tmp_path, capsys):
    source = _write(_rows(1200, seed=3), tmp_path / "in.jsonl")
    full = tmp_path / "full.jsonl"
    assert main(_flags(artefacts, source, full)) == 0
    out = tmp_path / "killed.jsonl"
    cmd = [sys.executable, "-m", "softprompt.cli", *_flags(artefacts, source, out)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, done = time.monotonic() + 240, 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if state_path(out).exists():
                done = json.loads(state_path(out).read_text())["rows_done"]
                if done >= 3 * CHUNK:
                    break
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state = json.loads(state_path(out).read_text())
    assert proc.returncode == -signal.SIGKILL and not state["complete"], "the run ended before it was killed"
    assert 3 * CHUNK <= state["rows_done"] < 1200 and state["rows_done"] % CHUNK == 0
    capsys.readouterr()
    assert main(_flags(artefacts, source, out, "--resume")) == 0
    assert json.loads(capsys.readouterr().out)["resumed_at_row"] == state["rows_done"]
    assert out.read_bytes() == full.read_bytes()


def test_a_half_written_chunk_is_cut_off_on_resume(artefacts, tmp_path, capsys, monkeypatch):
    source = _write(_rows(70, seed=4), tmp_path / "in.csv")
    full = tmp_path / "full.jsonl"
    assert main(_flags(artefacts, source, full)) == 0
    calls, original = [], SoftPromptWrapper.predict

    def dies_on_the_third_chunk(self, texts, **kwargs):
        calls.append(len(texts))
        if len(calls) == 3:
            raise RuntimeError("killed")
        return original(self, texts, **kwargs)

    monkeypatch.setattr(SoftPromptWrapper, "predict", dies_on_the_third_chunk)
    out = tmp_path / "out.jsonl"
    with pytest.raises(RuntimeError, match="killed"):
        main(_flags(artefacts, source, out))
    monkeypatch.undo()
    assert json.loads(state_path(out).read_text())["rows_done"] == 2 * CHUNK
    with open(out, "ab") as fh:  # a kill in the middle of writing chunk 2
        fh.write(b'{"row": 32, "label": 1, "lab')
    capsys.readouterr()
    assert main(_flags(artefacts, source, out, "--resume")) == 0
    assert json.loads(capsys.readouterr().out)["resumed_at_row"] == 2 * CHUNK
    assert out.read_bytes() == full.read_bytes()


def test_resume_refuses_another_input_or_settings_and_an_output_needs_a_flag(artefacts, tmp_path, capsys):
    rows = _rows(40, seed=5)
    source = _write(rows, tmp_path / "in.parquet")
    out = tmp_path / "out.jsonl"
    assert main(_flags(artefacts, source, out)) == 0
    before = out.read_bytes()
    capsys.readouterr()
    cases = {
        "exists": _flags(artefacts, source, out),
        "max_length": _flags(artefacts, source, out, "--resume", "--max-length", "24"),
        "chunk_rows": [*_flags(artefacts, source, out, "--resume"), "--chunk-rows", "8"],
        "exclude each other": _flags(artefacts, source, out, "--resume", "--overwrite"),
        "JSON lines": _flags(artefacts, source, tmp_path / "out.parquet"),
        "excludes texts": [*_flags(artefacts, source, out), "a text"],
        "applies to --input": ["predict", "--model", str(artefacts[0]), "x", "--resume"],
        "no column 'body'": _flags(artefacts, source, tmp_path / "o2.jsonl", "--text-column", "body"),
    }
    for expected, argv in cases.items():
        assert main(argv) == 2, expected
        assert expected in _one_error(capsys.readouterr().err), expected
    assert not (tmp_path / "o2.jsonl").exists() and not state_path(tmp_path / "o2.jsonl").exists()
    assert main(_flags(artefacts, source, out, "--resume")) == 0  # complete: nothing to do
    assert json.loads(capsys.readouterr().out)["rows"] == 40 and out.read_bytes() == before

    _write(rows + _rows(1, seed=6), source)  # the input changed: a new process refuses, in one line, exit 2
    proc = subprocess.run([sys.executable, "-m", "softprompt.cli", *_flags(artefacts, source, out, "--resume")],
                          cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 2 and "another input" in _one_error(proc.stderr)
    assert main(_flags(artefacts, source, out, "--overwrite")) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 41

    out.write_bytes(out.read_bytes().replace(b'"row": 3,', b'"row": 9,'))  # edited after the run
    assert main(_flags(artefacts, source, out, "--resume")) == 2
    assert "changed after its state file" in _one_error(capsys.readouterr().err)


def test_columns_default_to_text_and_pair_or_question_and_context(tmp_path):
    qa = _write([{"question": "who?", "context": "Ada.", "text": "x"}], tmp_path / "qa.jsonl")
    assert resolve_columns(qa, question_answering=True) == Columns("question", "context")
    assert resolve_columns(qa) == Columns("text", None)
    pairs = _write(_rows(2, pairs=True), tmp_path / "p.csv")
    assert resolve_columns(pairs) == Columns("text", "text_pair")
    assert resolve_columns(pairs, "id", "text") == Columns("id", "text")
    with pytest.raises(ValueError, match="no column 'question'"):
        resolve_columns(pairs, question_answering=True)
    nulls = _write([{"text": "a"}, {"text": None}], tmp_path / "n.parquet")
    with pytest.raises(ValueError, match="row 1: column 'text' holds null"):
        list(ChunkReader(nulls, Columns("text"), 1))
    numbers = _write([{"text": 7}], tmp_path / "n.jsonl")
    with pytest.raises(ValueError, match="line 1: column 'text' holds int"):
        list(ChunkReader(numbers, Columns("text"), 1))


def _fake_predict(rows):
    return [RegressionPrediction(value=float(len(r))) for r in rows]


def test_shards_resume_on_their_own_and_merge_to_the_one_process_output(tmp_path):
    """The sharding and merging logic without torchrun: each process's part written by run_chunks, one killed."""
    source = _write(_rows(150, seed=7), tmp_path / "in.jsonl")  # 10 chunks of 16 (the last of 6)
    identity = {"input": {"path": "in"}, "settings": {"model": "m"}}
    single = tmp_path / "single.jsonl"
    log = prepare_output(single, identity, Shard(), resume=False, overwrite=False)
    run_chunks(log, ChunkReader(source, Columns("text"), CHUNK), _fake_predict, progress=False)
    out = tmp_path / "sharded.jsonl"
    for rank in range(3):
        shard = Shard(rank, 3)
        log = prepare_output(out, identity, shard, resume=False, overwrite=False)
        predict = _fake_predict
        if rank == 1:  # killed after its first chunk

            def predict(rows, calls=[]):  # noqa: B006 (a counter)
                calls.append(1)
                if len(calls) == 2:
                    raise KeyboardInterrupt
                return _fake_predict(rows)

        reader = ChunkReader(source, Columns("text"), CHUNK, first_chunk=log.next_chunk, step=3)
        try:
            run_chunks(log, reader, predict, progress=False)
        except KeyboardInterrupt:
            log = prepare_output(out, identity, shard, resume=True, overwrite=False)
            assert (log.next_chunk, log.rows_done) == (4, CHUNK)
            reader = ChunkReader(source, Columns("text"), CHUNK, first_chunk=log.next_chunk, step=3)
            run_chunks(log, reader, _fake_predict, progress=False)
    with pytest.raises(ValueError, match="started by 3 processes"):
        prepare_output(out, identity, Shard(0, 2), resume=True, overwrite=False)
    assert merge_parts(out, identity, 3, CHUNK) == 150
    assert out.read_bytes() == single.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir() if "sharded" in p.name) == [
        out.name,
        state_path(out).name,
    ]
    assert prepare_output(out, identity, Shard(0, 3), resume=True, overwrite=False) is None  # complete


@pytest.mark.distributed
@pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="needs torch.distributed gloo"
)
def test_torchrun_two_processes_write_the_one_process_output(artefacts, tmp_path, capsys):
    source = _write(_rows(100, seed=8, pairs=True), tmp_path / "in.parquet", row_group_size=10)  # 7 chunks
    one = tmp_path / "one.jsonl"
    assert main(_flags(artefacts, source, one)) == 0
    two = tmp_path / "two.jsonl"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "softprompt.cli", *_flags(artefacts, source, two)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {
        "output": str(two),
        "rows": 100,
        "processes": 2,
        "truncated_rows": 0,
    }
    assert two.read_bytes() == one.read_bytes()
    state = json.loads(state_path(two).read_text())
    assert state["complete"] and state["merged_from"] == 2 and state["rows_done"] == 100
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("two")) == [
        two.name,
        state_path(two).name,
    ]


def test_resume_checks_the_state_files_counters_instead_of_trusting_them(tmp_path):
    """An edited next_chunk (or rows_done) once made --resume write rows twice or skip the rest and exit 0."""
    from softprompt.stream.chunk_log import ChunkLog
    from softprompt.utils.sharding import Shard

    out = tmp_path / "preds.jsonl"
    identity = {"input": {"rows": 10}, "settings": {"model": "m", "chunk_rows": 2}}
    log = ChunkLog.open(out, identity, Shard())
    log.append(0, '{"label": 1}\n{"label": 0}\n', 2)
    log.append(1, '{"label": 1}\n{"label": 1}\n', 2)
    ChunkLog.open(out, identity, Shard(), resume=True)  # the untouched state resumes at chunk 2
    good = json.loads(state_path(out).read_text())
    for change, needle in (
        ({"next_chunk": 5}, "the next chunk is 5 after 4 rows in chunks of 2, but that is chunk 2"),
        ({"next_chunk": 1}, "the next chunk is 1 after 4 rows"),
        ({"rows_done": 2}, "records 2 rows done but the file holds 4"),
        ({"next_chunk": "2"}, "not whole numbers"),
    ):
        state_path(out).write_text(json.dumps({**good, **change}))
        with pytest.raises(ValueError, match=needle):
            ChunkLog.open(out, identity, Shard(), resume=True)


PEAK_RSS = """
import json, resource, sys
from softprompt.cli import main
code = main(json.loads(sys.argv[1]))
print(json.dumps({"code": code, "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), file=sys.stderr)
"""


def _peak(argv):
    proc = subprocess.run([sys.executable, "-c", PEAK_RSS, json.dumps(argv)], capture_output=True, text=True,
                          env=ENV, cwd=REPO, timeout=600)  # fmt: skip
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return report, proc.stdout


def test_a_50_mb_line_is_cut_before_tokenizing_in_bounded_memory(artefacts, tmp_path):
    """One 50 MB text once grew the process to 2.5 GB and panicked the tokenizer (exit 134, nothing written)."""
    rows = _rows(20, seed=3)
    small = _write(rows, tmp_path / "small.jsonl")
    big_rows = [
        *rows[:5],
        {"id": "huge", "text": "word " * 10_000_000},
        *rows[5:],
    ]  # 50 MB of text in one line
    big = _write(big_rows, tmp_path / "big.jsonl")
    assert big.stat().st_size > 50_000_000
    base, _ = _peak(_flags(artefacts, small, tmp_path / "small-out.jsonl"))
    report, out = _peak(_flags(artefacts, big, tmp_path / "big-out.jsonl"))
    grown = (report["peak_kib"] - base["peak_kib"]) / 1024
    print(
        f"peak RSS {base['peak_kib'] / 1024:.0f} MiB for 20 short rows, +{grown:.0f} MiB with the 50 MB line"
    )
    assert base["code"] == 0 and report["code"] == 0
    assert grown < 600, grown  # the line itself, parsed once, and a 1 MB cut of it: not 2.5 GB
    summary = json.loads(out)
    assert summary["rows"] == 21 and summary["truncated_rows"] == 1
    lines = (tmp_path / "big-out.jsonl").read_text().splitlines()
    assert [json.loads(line)["row"] for line in lines] == list(range(21))
