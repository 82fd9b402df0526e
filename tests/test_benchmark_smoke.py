"""Smoke tests of the benchmarks on a tiny BERT and tiny parquet datasets: prompt_tuning.py (IMDb-like and
SICK-like pairs, with the roofline columns), gpu/bert_base.py --smoke and serving.py.

Checks the plumbing (one process per setup, equal steps, every figure and column reported), never the speed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import transformers

from tests.conftest import WORDS, make_tokenizer, model_config

# spawns one interpreter per setup; each pays ~5-10 s of imports (torch, transformers, evaluate) on 2 cores
pytestmark = pytest.mark.slow
SETUPS = "chapter,peft,peft-tuned,softprompt,softprompt-int8"  # softprompt-bf16 (bf16=True) left out for time

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPT = BENCHMARKS / "prompt_tuning.py"
HAS_PEFT = importlib.util.find_spec("peft") is not None
TRAIN, TEST, BATCH = 16, 12, 4
MAX_LENGTH, VIRTUAL = 40, 5  # tiny model: 64 positions


def _reviews(n: int, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 60))]  # some longer than MAX_LENGTH
        words.append("great" if label else "awful")
        rows.append({"text": " ".join(words), "label": label, "id": f"{i}_{label}"})
    return pd.DataFrame(rows)


SICK_LABELS = ("entailment", "neutral", "contradiction")


def _pairs(n: int, seed: int) -> pd.DataFrame:
    """SICK's columns: two sentences, a string label and a relatedness score."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a, b = (" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 15))) for _ in range(2))
        rows.append({"id": i, "sentence_a": a, "sentence_b": b, "relatedness": rng.uniform(1, 5),
                     "label": SICK_LABELS[i % 3]})  # fmt: skip
    return pd.DataFrame(rows)


ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
GEMM = ["--gemm-seconds", "0.01"]  # the roofline is measured, briefly


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, *map(str, cmd)], capture_output=True, text=True, env=ENV, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A tiny BERT folder, a tiny IMDb-like folder and a tiny SICK-like one (train/test parquet)."""
    root = tmp_path_factory.mktemp("bench")
    model_dir, data_dir, sick_dir = root / "tiny-bert", root / "imdb", root / "sick"
    for folder, rows in ((data_dir, _reviews), (sick_dir, _pairs)):
        folder.mkdir()
        rows(40, 0).to_parquet(folder / "train.parquet")
        rows(30, 1).to_parquet(folder / "test.parquet")
    transformers.BertForSequenceClassification(model_config("bert")).save_pretrained(model_dir)
    make_tokenizer().save_pretrained(model_dir)
    return root, model_dir, data_dir


@pytest.fixture(scope="module")
def report(assets) -> tuple[dict, str]:
    root, model_dir, data_dir = assets
    out = root / "results" / "smoke.json"
    flags = {
        "--model": model_dir, "--data": data_dir, "--train-size": TRAIN, "--test-size": TEST, "--batch-size": BATCH,
        "--epochs": 2, "--max-length": MAX_LENGTH, "--num-virtual-tokens": VIRTUAL, "--out": out, "--setups": SETUPS,
    }  # fmt: skip
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--no-warmup",
            *GEMM,
            *(str(x) for kv in flags.items() for x in kv),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.with_suffix(".md").read_text() in proc.stdout  # the table is printed and written
    return json.loads(out.read_text()), proc.stdout


def test_every_setup_measured_on_equal_terms(report):
    data, _ = report
    steps = 2 * TRAIN // BATCH
    assert data["config"]["steps"] == steps
    expected = {"chapter", "softprompt", "softprompt-int8"} | (
        {"peft", "peft-tuned"} if HAS_PEFT else set()
    )  # no peft: skipped, not failed
    assert set(data["setups"]) == expected
    for name, r in data["setups"].items():
        assert "error" not in r, name
        assert r["train"]["steps"] == steps, name
        assert r["train"]["samples"] == 2 * TRAIN and r["predict"]["samples"] == TEST
        assert r["train"]["samples_per_s"] > 0 and r["predict"]["samples_per_s"] > 0
        assert 0.0 <= r["accuracy"] <= 1.0
        assert r["peak_rss_mib"]["process"] >= r["peak_rss_mib"]["predicted"] > 0
        assert r["artefact"]["bytes"] > 0
    hidden = model_config("bert").hidden_size
    assert data["setups"]["chapter"]["trainable_parameters"] == VIRTUAL * hidden  # the head stays frozen
    assert data["setups"]["softprompt"]["trainable_parameters"] == VIRTUAL * hidden + hidden * 2 + 2
    assert data["same_subset"] and len({r["subset_sha256"] for r in data["setups"].values()}) == 1
    assert data["machine"]["versions"]["torch"]
    assert data["ratios"]["softprompt"]["train_vs_chapter"] > 0
    assert set(data["targets"]) >= {"softprompt", "softprompt-int8"}  # every softprompt row is judged


def test_roofline_mfu_and_step_breakdown(report):
    data, _ = report
    roof = data["roofline"]
    assert roof["peak_gflops"]["fp32"] > 0 and roof["before"] and roof["after"]
    assert ("bf16" in roof["peak_gflops"]) == roof["native_bf16"]  # never measured where bf16 is emulated
    assert roof["cpu_capability"] and roof["threads"] >= 1
    for name, r in data["setups"].items():
        for phase in ("train", "predict"):
            assert r[phase]["tokens"] > 0 and r[phase]["forward_flops"] > 0, name
            assert data["ratios"][name][f"{phase}_mfu"] > 0, name
        # the same work for everyone: real (unpadded) tokens, whatever a setup pads to
        assert r["train"]["tokens"] == data["setups"]["softprompt"]["train"]["tokens"]
        fwd = r["train"]["forward_flops"]
        assert 2 * fwd <= r["train"]["train_flops"] <= 3 * fwd  # frozen backbone: 2 F_linear + 3 F_attn
        b = r["train"]["step_breakdown"]
        assert (
            b["steps"] == r["train"]["steps"]
            and b["step_ms"] > 0
            and b["forward_ms"] > 0
            and b["backward_ms"] > 0
        )
    assert {"train MFU >= 65%", "predict MFU >= 85%"} <= set(data["targets"]["softprompt"])


def test_table_has_a_row_per_setup(report):
    data, stdout = report
    for name in data["setups"]:
        assert f"| {name} |" in stdout
    assert "Targets (softprompt rows):" in stdout
    assert "| train MFU |" in stdout and "| predict MFU |" in stdout
    assert "GEMM peak (cpu" in stdout and "CPU capability" in stdout and "torch threads" in stdout
    assert "| setup | step | forward | backward | optimizer | other |" in stdout


def test_peft_setup_and_ratios_to_peft(report):
    pytest.importorskip("peft")
    data, stdout = report
    peft = data["setups"]["peft"]
    hidden = model_config("bert").hidden_size
    assert peft["trainable_parameters"] == VIRTUAL * hidden + hidden * 2 + 2  # prompt + classifier
    assert "adapter_model.safetensors" in peft["artefact"]["files"]
    ratios = data["ratios"]["softprompt"]
    assert ratios["train_vs_peft"] > 0 and ratios["peak_rss_vs_peft"] > 0
    assert ratios["train_vs_peft-tuned"] > 0 and ratios["predict_vs_peft-tuned"] > 0  # the tuned baseline ran
    assert "vs peft-tuned" in stdout
    assert set(data["targets"]["softprompt"]) >= {"accuracy >= peft - 1 pt", "peak RSS <= peft"}


def test_seeds_give_distributions_over_runs(assets):
    root, model_dir, data_dir = assets
    out = root / "results" / "seeds.json"
    flags = {
        "--model": model_dir, "--data": data_dir, "--train-size": TRAIN, "--test-size": TEST, "--batch-size": BATCH,
        "--epochs": 1, "--max-length": MAX_LENGTH, "--num-virtual-tokens": VIRTUAL, "--out": out,
        "--setups": "chapter,softprompt",
    }  # fmt: skip
    cmd = [sys.executable, str(SCRIPT), "--quick", "--no-warmup", *(str(x) for kv in flags.items() for x in kv),
           "--seeds", "1", "2", "--gemm-seconds", "0"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["seeds"] == [1, 2] and set(data["setups_by_seed"]) == {"1", "2"}
    for name in ("chapter", "softprompt"):
        accs = [data["setups_by_seed"][s][name]["accuracy"] for s in ("1", "2")]
        assert data["over_seeds"][name]["accuracy"]["values"] == accs
        assert data["over_seeds"][name]["train_vs_chapter"]["n"] == 2
    assert "Over seeds [1, 2]" in proc.stdout
    assert "GEMM peak: not measured" in proc.stdout and data["roofline"] == {}


def test_seed_study_runs_recipes_over_seeds(assets):
    root, model_dir, data_dir = assets
    report = root / "study" / "study.json"
    cmd = [sys.executable, str(SCRIPT.parent / "seed_study.py"), "--plan", "variance", "--quick", "--model",
           str(model_dir), "--imdb", str(data_dir), "--settings", "pt-baseline,pt-warmup", "--seeds", "1", "2",
           "--out", str(root / "study"), "--report", str(report)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(report.read_text())
    summaries = data["variance"]["summaries"]
    assert set(summaries) == {"pt-baseline", "pt-warmup"} and data["chosen"]["setting"] in summaries
    for name, summary in summaries.items():
        finals = [summary["results"][s]["eval_accuracy"] for s in ("1", "2")]
        assert summary["final"]["eval_accuracy"]["values"] == finals, name
    warmup = json.loads(
        (root / "study" / "variance" / "pt-warmup" / "seed-1" / "training_args.json").read_text()
    )
    assert warmup["warmup_steps"] == 0.1
    assert "| pt-baseline | 2 |" in proc.stdout


def test_sick_workload_pairs(assets):
    """``--workload sick``: sentence pairs with string labels, three classes, every setup on the same rows."""
    root, model_dir, _ = assets
    out = root / "results" / "sick.json"
    proc = _run([SCRIPT, "--workload", "sick", "--data", root / "sick", "--model", model_dir, "--no-warmup", *GEMM,
                 "--train-size", 12, "--test-size", 9, "--batch-size", 4, "--max-length", MAX_LENGTH,
                 "--num-virtual-tokens", VIRTUAL, "--setups", "chapter,peft,softprompt" if HAS_PEFT else "chapter,softprompt",
                 "--out", out])  # fmt: skip
    data = json.loads(out.read_text())
    assert data["config"]["workload"] == "sick" and data["same_subset"]
    hidden = model_config("bert").hidden_size
    for name, r in data["setups"].items():
        assert "error" not in r, name
        assert r["train"]["steps"] == 3 and r["predict"]["samples"] == 9
        assert r["train"]["step_breakdown"]["steps"] == 3
    assert (
        data["setups"]["softprompt"]["trainable_parameters"] == VIRTUAL * hidden + hidden * 3 + 3
    )  # 3 classes
    assert set(data["targets"]["softprompt"]) >= {"train >= 2x peft", "train MFU >= 65%"}
    assert "(sick)" in proc.stdout and "| softprompt |" in proc.stdout


def test_gpu_bert_base_smoke(assets):
    """benchmarks/gpu/bert_base.py --smoke: a tiny random BERT, every setup in bf16, repeats, one JSON printed."""
    root, model_dir, data_dir = assets
    out = root / "results" / "gpu.json"
    setups = "chapter,peft,softprompt" if HAS_PEFT else "chapter,softprompt"
    proc = _run([BENCHMARKS / "gpu" / "bert_base.py", "--smoke", "--tokenizer", model_dir, "--data", data_dir,
                 "--no-warmup", *GEMM, "--setups", setups, "--out", out])  # fmt: skip
    table, _, printed = proc.stdout.partition("\n{")
    data = json.loads("{" + printed)
    assert data == json.loads(out.read_text()) and data["benchmark"] == "gpu_bert_base"
    assert data["config"]["bf16"] and data["config"]["repeats"] == 2
    for name, r in data["setups"].items():
        assert "error" not in r, name
        assert r["compute_dtype"] == "bf16" and len(r["train"]["seconds_per_repeat"]) == 2
    assert set(data["targets"]["softprompt"]) >= {"train >= 2x chapter", "predict >= 5x chapter"}
    assert "bf16 for every setup, median of 2 repeats" in table and "| train MFU |" in table


def test_serving_k_tasks(assets):
    """benchmarks/serving.py: K = 1 and 16 tasks, mixed and grouped softprompt, PEFT adapters switched or separate."""
    root, model_dir, data_dir = assets
    out = root / "results" / "serving.json"
    setups = "softprompt-mixed,softprompt-grouped" + (",peft-switch,peft-separate" if HAS_PEFT else "")
    proc = _run([BENCHMARKS / "serving.py", "--model", model_dir, "--data", data_dir, "--ks", "1,16", "--texts", 20,
                 "--max-length", MAX_LENGTH, "--num-virtual-tokens", VIRTUAL, "--batch-size", 4, "--no-warmup",
                 "--setups", setups, "--out", out])  # fmt: skip
    data = json.loads(out.read_text())
    rows = {(r["setup"], r["k"]): r for r in data["rows"]}
    expected = {(s, 16) for s in setups.split(",")} | {("softprompt-mixed", 1)} | ({("peft-switch", 1)} if HAS_PEFT else set())  # fmt: skip
    assert set(rows) == expected
    for key, r in rows.items():
        assert "error" not in r, key
        assert r["texts"] == 20 and r["texts_per_s"] > 0 and r["rss_mib"]["process"] > 0
        assert r["vs_single_throughput"] > 0 and r["vs_single_memory"] > 0
    # the same prompts and heads, batched two ways: the same predictions
    assert rows[("softprompt-mixed", 16)]["agrees_with_grouped"] >= 0.95  # float rounding may flip a near tie
    assert set(data["targets"]) == {"K=16 mixed throughput >= 0.9x single", "K=16 mixed memory < 1.1x single"}
    for column in (
        "| K | setup | texts/s | vs single prompt |",
        "| 16 | softprompt-mixed |",
        "| target | result |",
    ):
        assert column in proc.stdout


def test_levers_each_setting_measured_and_within_float_rounding(assets):
    """benchmarks/levers.py: the four settings of trim_last_layer x onednn_linear, on tiny data."""
    root, model_dir, data_dir = assets
    out = root / "results" / "levers.json"
    proc = _run([BENCHMARKS / "levers.py", "--model", model_dir, "--imdb", data_dir, "--sick", root / "sick",
                 "--predict-texts", 10, "--train-steps", 2, "--rounds", 1, "--imdb-length", MAX_LENGTH,
                 "--sick-length", MAX_LENGTH, *GEMM, "--out", out])  # fmt: skip
    data = json.loads(out.read_text())
    assert set(data["predict_imdb_512"]) == set(data["train_sick_128"]) == {
        "whole model, torch BLAS", "last layer trimmed", "oneDNN packed linears", "both levers"
    }  # fmt: skip
    from softprompt.models.onednn import onednn_default

    # the table marks the setting a wrapper starts with on this CPU kind
    assert data["default_here"] == ("both levers" if onednn_default() else "last layer trimmed")
    assert f"| {data['default_here']} (the default here) |" in proc.stdout
    for setting, r in data["predict_imdb_512"].items():
        assert r["texts_per_s"] > 0 and data["train_sick_128"][setting]["steps_per_s"] > 0
        assert r["max_abs_logit_diff"] < 1e-4, setting  # the levers change float rounding only
    assert "GEMM peak: fp32" in proc.stdout


def test_bf16_attention_times_the_three_settings_and_the_upcast_changes_rounding_only(assets):
    """benchmarks/bf16_attention.py: fp32, bf16 and bf16 with fp32 attention steps, on a tiny model."""
    root, model_dir, _ = assets
    out = root / "results" / "bf16-attention.json"
    proc = _run([BENCHMARKS / "bf16_attention.py", "--model", model_dir, "--lengths", 32, MAX_LENGTH,
                 "--steps", 1, "--rounds", 1, "--gemm-seconds", 0, "--out", out])  # fmt: skip
    data = json.loads(out.read_text())
    assert set(data["steps"]) == {"32", str(MAX_LENGTH)}
    for row in data["steps"].values():
        assert set(row) == {"fp32", "bf16, bf16 attention", "bf16, fp32 attention"}
        assert (
            all(r["ms_per_step"] > 0 for r in row.values())
            and row["fp32"]["prompt_grad_rel_diff_vs_fp32"] == 0
        )
        for name in ("bf16, bf16 attention", "bf16, fp32 attention"):  # bf16 rounding, not another gradient
            # (4-9 % on MiniLM; more on this tiny random model, whose gradients are small and noisy)
            assert 0 < row[name]["prompt_grad_rel_diff_vs_fp32"] < 1, name
    assert "| 32 |" in proc.stdout and "fp32 attention up to" in proc.stdout


def test_step_profile_splits_a_training_step_into_operator_kinds(assets):
    """benchmarks/step_profile.py: a prompt-tuning step's time by operator kind, on a tiny model."""
    root, model_dir, _ = assets
    out = root / "results" / "step-profile.json"
    proc = _run([BENCHMARKS / "step_profile.py", "--model", model_dir, "--lengths", 32, MAX_LENGTH,
                 "--steps", 1, "--gemm-seconds", 0, "--out", out])  # fmt: skip
    data = json.loads(out.read_text())
    assert set(data["lengths"]) == {"32", str(MAX_LENGTH)}
    for row in data["lengths"].values():
        kinds = row["kinds"]
        assert {"linear", "attention", "layer norm", "optimizer"} <= set(kinds), set(kinds)
        assert abs(sum(k["share"] for k in kinds.values()) - 1) < 1e-6  # every operator counted once
        assert kinds["linear"]["model_gflops"] > 0 and kinds["linear"]["vs_peak"] is None  # no peak measured
        assert row["step_ms"] > 0 and row["mfu"] is None and len(row["top_ops"]) == 10
    assert "| linear |" in proc.stdout and "top operators" in proc.stdout
    bad = subprocess.run([sys.executable, BENCHMARKS / "step_profile.py", "--model", model_dir, "--lengths", "20"],
                         capture_output=True, text=True, env=ENV, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "room for text" in bad.stderr


def test_heap_times_each_workload_with_and_without_the_kept_heap(assets):
    """benchmarks/heap.py: every workload in fresh processes, heap kept and not, on a tiny model."""
    root, model_dir, _ = assets
    out = root / "results" / "heap.json"
    proc = _run([BENCHMARKS / "heap.py", "--model", model_dir, "--length", 32, "--ft-batch", 2, "--batch", 2,
                 "--predict-texts", 4, "--steps", 2, "--rounds", 1, "--trim-every", 1, "--gemm-seconds", 0,
                 "--out", out])  # fmt: skip
    data = json.loads(out.read_text())
    assert data["cpu_capability"] and data["threads"] >= 1 and "gemm" not in data
    for workload in ("finetune", "finetune-fp32", "finetune-varying", "prompt", "predict"):
        trimmed = {"on, trimmed"} if workload.startswith("finetune") else set()  # training's trims
        assert set(data[workload]) == {"off", "on", *trimmed}, workload
        for run in data[workload]["off"] + data[workload]["on"]:
            assert run["median_s"] > 0 and run["page_faults_per_step"] >= 0 and run["peak_rss_mib"] > 0
        assert f"| {workload} | on |" in proc.stdout
    assert "retained_heap here:" in proc.stdout


def test_finetuned_predict_measures_this_machines_default_and_bare(assets):
    """benchmarks/finetuned_predict.py: a trainable classifier predicts with the default levers and bare."""
    from softprompt.models.onednn import onednn_default

    root, model_dir, data_dir = assets
    out = root / "results" / "finetuned.json"
    _run([BENCHMARKS / "finetuned_predict.py", "--model", model_dir, "--data", data_dir, "--texts", 6,
          "--rounds", 1, "--max-length", MAX_LENGTH, "--gemm-seconds", 0.01, "--out", out])  # fmt: skip
    data = json.loads(out.read_text())
    # where oneDNN is off by default, the run also shows what forcing it on would do
    expected = {"levers", "bare"} | (set() if onednn_default() else {"levers + oneDNN forced"})
    assert set(data["median_texts_per_s"]) == expected and data["onednn_default"] == onednn_default()
    assert all(rate > 0 for rate in data["median_texts_per_s"].values()) and data["vs_bare"]["bare"] == 1.0
    assert data["max_abs_logit_difference"] < 1e-4  # the levers change float rounding only
    assert data["cpu_capability"] == data["gemm"]["cpu_capability"]


def test_compile_predict_on_top_of_the_defaults(assets):
    """benchmarks/compile_predict.py: a compiled wrapper predicts what the eager one does, on tiny data."""
    from tests.test_threads_compile_pipeline import _compiler_available

    if _compiler_available() is not None:
        pytest.skip(str(_compiler_available()))
    root, model_dir, data_dir = assets
    out = root / "results" / "compile.json"
    _run([BENCHMARKS / "compile_predict.py", "--model", model_dir, "--data", data_dir, "--texts", 6,
          "--max-length", MAX_LENGTH, "--repeats", 1, "--out", out])  # fmt: skip
    data = json.loads(out.read_text())
    assert data["max_abs_logit_diff"] < 1e-4
    assert data["fixed_batch_ms"]["compiled"] > 0 and data["predict_texts_per_s"]["compiled_second_pass"] > 0


def test_model_flops_formula():
    """2 x matmul parameters per token plus attention's 4 n H per layer; training 2 F_linear + 3 F_attn."""
    sys.path.insert(0, str(BENCHMARKS))
    from model_flops import first_token_forward_flops, forward_flops, train_flops, workload_flops

    config = model_config("bert")  # H 32, I 37, L 2
    h, i, layers, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers, 10
    linear, attention = 2 * layers * (4 * h * h + 2 * h * i) * n, 4 * layers * n * n * h
    assert forward_flops(config, n) == linear + attention
    assert train_flops(config, n) == 2 * linear + 3 * attention
    work = workload_flops(config, [n, n], passes=3)
    assert work == {"sequences": 6, "tokens": 60, "forward_flops": 6 * (linear + attention),
                    "train_flops": 6 * (2 * linear + 3 * attention)}  # fmt: skip
    # the last layer for position 0 alone: K and V of every token, the rest of one token, one query's attention
    per_layer = 2 * (4 * h * h + 2 * h * i)
    last = 2 * (2 * h * h) * n + (per_layer - 2 * (2 * h * h)) + 4 * n * h
    assert first_token_forward_flops(config, n) == (layers - 1) * (per_layer * n + 4 * n * n * h) + last


def test_drivers_stay_small():
    """The drivers import no torch, transformers or datasets: on Linux a child's ru_maxrss starts from its
    parent's resident size at fork, so a heavy driver would floor every setup's measured peak memory."""
    code = (
        "import sys; sys.path[:0] = [{b!r}, {g!r}]; import prompt_tuning, serving, bert_base, heap; "
        "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'peft', 'softprompt') if m in sys.modules))"
    ).format(b=str(BENCHMARKS), g=str(BENCHMARKS / "gpu"))
    assert _run(["-c", code]).stdout.strip() == "[]"


def test_deep_regression_collapse_probes(assets):
    """The stall's reproduction runs, probes what reaches the head before and after, and records the fit."""
    root, model_dir, _ = assets
    proc = _run([BENCHMARKS / "deep_regression_collapse.py", "--model", model_dir, "--data", root / "sick",
                 "--train-size", 8, "--eval-size", 6, "--epochs", 1, "--max-length", MAX_LENGTH, "--head-init", "fit"])  # fmt: skip
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["deep"] and line["head_fit"]["rows"] == 8
    for when in ("start", "end"):
        probe = line["probes"][when]
        assert -1 <= probe["cls_cos"] <= 1 and probe["pooled_spread"] >= 0
        assert len(probe["deep_norm"]) == model_config("bert").num_hidden_layers - 1


def test_dept_probe_trains_offsets_in_their_own_group(assets):
    """The DePT prototype: a shorter prompt plus rank-r offsets, the budget reported; --rank 0 has none."""
    root, model_dir, _ = assets
    common = [BENCHMARKS / "dept_probe.py", "--model", model_dir, "--data", root / "sick", "--text-column",
              "sentence_a", "--text-pair-column", "sentence_b", "--label-column", "label", "--train-size", 8,
              "--eval-size", 6, "--epochs", 3, "--max-length", MAX_LENGTH, "--tokens", 2]  # fmt: skip
    hidden = model_config("bert").hidden_size
    line = json.loads(_run([*common, "--rank", 2]).stdout.strip().splitlines()[-1])
    assert line["offset_values"] == MAX_LENGTH * 2 + 2 * hidden and line["prompt_values"] == 2 * hidden
    assert (
        line["offset_norm"] > 0
    )  # B left zero would mean the offsets never trained (step 1's lr is 0: warm-up)
    assert json.loads(_run([*common, "--rank", 0]).stdout.strip().splitlines()[-1])["offset_values"] == 0


def test_collapse_tiny_reports_each_head_and_seed():
    """The tiny-model collapse probe: cosine before -> after and r per seed, for both heads."""
    proc = _run([BENCHMARKS / "collapse_tiny.py", "--init-range", 0.2, "--steps", 3, "--train-rows", 24,
                 "--seeds", 1, 2])  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("init_range 0.2")]
    assert [line.split(":")[0] for line in lines] == [
        "init_range 0.2 head as created",
        "init_range 0.2 head fit",
    ]
    assert all(line.count("cos ") == 2 and line.count(" r ") == 2 for line in lines)


def test_attention_candidates_agree_with_sdpa_and_are_reported():
    """benchmarks/attention.py: the batched-GEMM candidate is the same attention (masked or not, any chunking),
    and the script prints a row per candidate with its error against float64."""
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, str(BENCHMARKS))
    try:
        from attention import bmm_attention, padding_mask
    finally:
        sys.path.remove(str(BENCHMARKS))
    q, k, v = (torch.randn(3, 2, 24, 8) for _ in range(3))
    mask = padding_mask(3, 24)
    assert (mask < 0).any()  # some positions are padding
    for m in (mask, None):
        want = F.scaled_dot_product_attention(q, k, v, attn_mask=m)
        for rows in (1, 4, None):
            torch.testing.assert_close(bmm_attention(q, k, v, m, rows), want, atol=1e-5, rtol=1e-5)
    proc = _run([BENCHMARKS / "attention.py", "--batch", 2, "--heads", 2, "--head-size", 8, "--lengths", 16,
                 "--seconds", 0.01, "--gemm-seconds", 0.01])  # fmt: skip
    names = [line.split()[0] for line in proc.stdout.splitlines() if line[:4] in ("sdpa", "bmm-")]
    assert names == ["sdpa", "sdpa-math", "bmm-1", "bmm-all"]  # B x heads = 4 rows: 4 is all of them
    assert all(
        float(line.split()[-1]) < 1e-4 for line in proc.stdout.splitlines() if line[:4] in ("sdpa", "bmm-")
    )
    proc = _run([BENCHMARKS / "attention.py", "--batch", 2, "--heads", 2, "--head-size", 8, "--lengths", 16,
                 "--seconds", 0.01, "--gemm-seconds", 0.01, "--dtype", "bf16"])  # fmt: skip
    rows = [line.split() for line in proc.stdout.splitlines() if line[:4] in ("sdpa", "bmm-")]
    assert [row[0] for row in rows] == ["sdpa", "sdpa-math", "sdpa-fp32", "bmm-1", "bmm-all"]
    assert all(float(row[-1]) < 5e-2 for row in rows)  # bf16 inputs and outputs: bf16's rounding


def test_latency_systems_take_turns_in_blocks_each_leading_in_turn():
    """benchmarks/latency.py's timer: warm-up, then blocks of ``block`` timed calls after one untimed call,
    the systems' order rotating every round, until each has ``requests`` timings."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from latency import timed
    finally:
        sys.path.remove(str(BENCHMARKS))
    log: list[str] = []
    calls = {name: (lambda name=name: log.append(name)) for name in "abc"}
    report = timed(calls, requests=4, block=2)
    assert sorted(report) == ["a", "b", "c"] and all(
        set(r) == {"p50_ms", "p99_ms", "mean_ms"} for r in report.values()
    )
    rounds = log[15:]  # after 5 warm-up calls each
    assert rounds == list("aaabbbcccbbbcccaaa")  # each block: 1 untimed + 2 timed; round 2 starts at b
