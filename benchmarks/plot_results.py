"""Figures for the docs from the results files: accuracy over seeds, and speed against PEFT.

Reads only what the runs and benchmarks wrote (no figure is typed in here) and writes PNGs under
``docs/results/``, which docs/results.md and docs/benchmarks.md show:

- ``seeds.png``: per task, prompt tuning, deep prompts and fine-tuning as mean ± sd over seeds 1-3, each seed
  a dot (docs/results/seeds/h200-imdb-study.json, docs/results/seeds/cpu-sick-study.json with the deep
  relatedness runs of docs/results/seeds/cpu-sick-rel-deep-fit.json, docs/results/conll/summary.json);
- ``speed-<workload>.png``: each setup's training and prediction throughput as a multiple of PEFT's, from one
  ``benchmarks/prompt_tuning.py`` run (its CPU capability and date in the title; ``--machine`` picks whose,
  the Zen 5 EPYC's by default): PEFT's defaults, PEFT tuned for speed with flags, softprompt.

    python benchmarks/plot_results.py            # needs matplotlib (pip install -e ".[plots]")
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results"
# the README's first speed row: the Zen 5 EPYC's runs (``--machine ""`` for the first AMD machine's)
SPEED_RUN = REPO / "benchmarks" / "results" / "minilm-{workload}-tuned-peft{suffix}.json"
SPEED_WORKLOADS = ("imdb", "sick")
METHODS = ("prompt tuning", "deep prompt", "fine-tuning")
COLOURS = {"prompt tuning": "#4c72b0", "deep prompt": "#55a868", "fine-tuning": "#c44e52"}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def seed_panels() -> list[tuple[str, str, dict[str, dict[str, Any]]]]:
    """``(task, metric label, {method: distribution})`` per panel, read from the seed-study files."""
    imdb = _load(RESULTS / "seeds" / "h200-imdb-study.json")["docs"]["summaries"]
    sick = _load(RESULTS / "seeds" / "cpu-sick-study.json")["summaries"]
    # deep relatedness: the release default (head_init="auto" fits a new regression head of a deep prompt)
    sick["sick-rel-deep"] = _load(RESULTS / "seeds" / "cpu-sick-rel-deep-fit.json")
    conll = _load(RESULTS / "conll" / "summary.json")
    return [
        ("IMDb (2,000 / 1,000, len 256)", "accuracy", {
            m: imdb[f"imdb-{k}"]["final"]["eval_accuracy"] for m, k in zip(METHODS, ("pt", "deep", "ft"))}),
        ("SICK entailment", "accuracy", {
            m: sick[f"sick-nli-{k}"]["final"]["eval_accuracy"] for m, k in zip(METHODS, ("pt", "deep", "ft"))}),
        ("SICK relatedness", "Pearson r", {
            m: sick[f"sick-rel-{k}"]["final"]["eval_pearson"] for m, k in zip(METHODS, ("pt", "deep", "ft"))}),
        ("CoNLL-2003 (test)", "entity F1", {
            m: conll[k]["test"]["eval_f1"] for m, k in zip(METHODS, ("pt", "deep", "ft2"))}),
    ]  # fmt: skip


def plot_seeds(out: Path) -> Path:
    panels = seed_panels()
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 3.6))
    for ax, (task, metric, dists) in zip(axes, panels):
        for i, method in enumerate(METHODS):
            d = dists[method]
            ax.bar(i, d["mean"], yerr=d["sd"], color=COLOURS[method], alpha=0.8, capsize=4)
            values = d.get("values", [])
            ax.scatter([i] * len(values), values, color="black", s=10, zorder=3)
            ax.annotate(f"{d['mean']:.3f}", (i, d["mean"]), ha="center", va="bottom", fontsize=8,
                        xytext=(0, 6), textcoords="offset points")  # fmt: skip
        low = min(min(d.get("values", [d["mean"]])) for d in dists.values())
        ax.set_ylim(max(0.0, low - 0.1), 1.0)
        ax.set_xticks(range(len(METHODS)), ["prompt", "deep", "fine-tune"])
        ax.set_title(task, fontsize=10)
        ax.set_ylabel(metric)
    fig.suptitle("all-MiniLM-L6-v2, mean ± sd over seeds 1-3 (dots: each seed)", fontsize=11)
    fig.tight_layout()
    path = out / "seeds.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_speed(workload: str, run: Path, out: Path) -> Path:
    data = _load(run)
    ratios = data["ratios"]
    setups = list(ratios)
    fig, ax = plt.subplots(figsize=(8, 3.4))
    width = 0.38
    for j, (key, label) in enumerate((("train_vs_peft", "training"), ("predict_vs_peft", "prediction"))):
        xs = [i + (j - 0.5) * width for i in range(len(setups))]
        values = [ratios[s][key] for s in setups]
        ax.bar(xs, values, width, label=label, color=("#4c72b0", "#dd8452")[j])
        for x, v in zip(xs, values):
            ax.annotate(f"{v:.2f}x", (x, v), ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                        textcoords="offset points")  # fmt: skip
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_ylim(0, 1.15 * max(max(r["train_vs_peft"], r["predict_vs_peft"]) for r in ratios.values()))
    ax.set_xticks(range(len(setups)), setups, fontsize=9)
    ax.set_ylabel("throughput / PEFT's")
    cfg, machine = data["config"], data["machine"]
    ax.set_title(
        f"{workload}: {cfg.get('train_size')} train / {cfg.get('test_size')} test, length {cfg.get('max_length')}; "
        f"{machine.get('cpu')} {machine.get('torch_cpu_capability')}, {machine.get('torch_threads')} threads, "
        f"{data['created'][:10]}",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / f"speed-{workload}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the PNGs")
    parser.add_argument(
        "--machine", default="zen5", help="whose speed runs: the results files' suffix (zen5, intel, avx2)"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(plot_seeds(args.out))
    suffix = f"-{args.machine}" if args.machine else ""
    for workload in SPEED_WORKLOADS:
        print(plot_speed(workload, Path(str(SPEED_RUN).format(workload=workload, suffix=suffix)), args.out))


if __name__ == "__main__":
    main()
