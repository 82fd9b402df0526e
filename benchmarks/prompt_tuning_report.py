"""What ``prompt_tuning.py`` makes of its setups' measurements: ratios, MFU, targets and the markdown tables.

Every figure comes from the run's own JSON: the setups' seconds, tokens and model FLOPs, and the GEMM
peak measured by the driver in the same run (see ``model_flops.py`` for the FLOP count).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from model_flops import mfu

__all__ = [
    "CPU_TARGETS",
    "GPU_TARGETS",
    "SICK_TARGETS",
    "Targets",
    "markdown",
    "over_seeds",
    "summarise",
]


@dataclass(frozen=True)
class Targets:
    """What the softprompt rows are judged against in the same run."""

    # (phase, reference setup, minimum ratio of samples/s)
    throughput: tuple[tuple[str, str, float], ...]
    # (phase, minimum MFU as a fraction of the GEMM peak of the row's compute dtype)
    mfu: tuple[tuple[str, float], ...] = (("train", 0.65), ("predict", 0.85))
    max_accuracy_drop: float = 0.01  # below peft by at most 1 point


# the targets at the chapter's length 512 (IMDb), on a CPU
CPU_TARGETS = Targets((("train", "chapter", 3.0), ("train", "peft", 2.0), ("predict", "chapter", 5.0), ("predict", "peft", 2.0)))  # fmt: skip
# sentence pairs at length 128: training is the target there
SICK_TARGETS = Targets((("train", "peft", 2.0),))
# bert-base on one GPU, everyone in bf16 (benchmarks/gpu/bert_base.py); MFU is reported, not judged
GPU_TARGETS = Targets((("train", "chapter", 2.0), ("train", "peft", 1.5), ("predict", "chapter", 5.0), ("predict", "peft", 2.0)), mfu=())  # fmt: skip


def _ratio(results: dict[str, Any], name: str, ref: str, phase: str) -> float | None:
    a, b = results.get(name, {}), results.get(ref, {})
    if "error" in a or "error" in b or phase not in a or phase not in b:
        return None
    return a[phase]["samples_per_s"] / b[phase]["samples_per_s"]


def _model_flops(r: dict[str, Any], phase: str) -> int | None:
    """Model FLOPs of a phase's work: forward and backward for training, forward for prediction."""
    return r[phase].get("train_flops" if phase == "train" else "forward_flops")


def summarise(results: dict[str, Any], targets: Targets, peaks: dict[str, float]) -> dict[str, Any]:
    """Ratios to chapter and peft, MFU, and the targets for the softprompt rows.

    Args:
        results: The setups' JSON by name.
        targets: What the softprompt rows must reach.
        peaks: GEMM peak GFLOP/s by dtype (``fp32``, ``bf16``), measured in the same run.
    """
    ratios: dict[str, Any] = {}
    checks_by_setup: dict[str, Any] = {}
    peft = results.get("peft", {})
    for name, r in results.items():
        if "error" in r:
            continue
        row: dict[str, Any] = {
            f"{phase}_vs_{ref}": _ratio(results, name, ref, phase)
            for phase in ("train", "predict")
            for ref in (
                "chapter",
                "peft",
                "peft-tuned",
            )  # peft-tuned: PEFT as fast as flags and a sort make it
        }
        for phase in ("train", "predict"):
            flops, seconds = _model_flops(r, phase), r[phase]["seconds"]
            row[f"{phase}_model_gflops"] = None if flops is None else flops / seconds / 1e9  # achieved rate
            peak = peaks.get(r.get("compute_dtype", "fp32"))
            row[f"{phase}_mfu"] = None if flops is None else mfu(flops, seconds, peak)
        if "error" not in peft and "accuracy" in peft:
            row["accuracy_minus_peft"] = r["accuracy"] - peft["accuracy"]
            row["peak_rss_vs_peft"] = r["peak_rss_mib"]["process"] / peft["peak_rss_mib"]["process"]
        ratios[name] = row
        if not name.startswith("softprompt"):
            continue
        checks: dict[str, bool | None] = {}
        for phase, ref, minimum in targets.throughput:
            value = row[f"{phase}_vs_{ref}"]
            checks[f"{phase} >= {minimum:g}x {ref}"] = None if value is None else value >= minimum
        for phase, minimum in targets.mfu:
            value = row[f"{phase}_mfu"]
            checks[f"{phase} MFU >= {100 * minimum:g}%"] = None if value is None else value >= minimum
        if "accuracy_minus_peft" in row:
            checks["accuracy >= peft - 1 pt"] = row["accuracy_minus_peft"] >= -targets.max_accuracy_drop
            checks["peak RSS <= peft"] = row["peak_rss_vs_peft"] <= 1.0
        checks_by_setup[name] = checks
    return {"ratios": ratios, "targets": checks_by_setup}


def over_seeds(
    by_seed: dict[int, dict[str, Any]], targets: Targets, peaks: dict[str, float]
) -> dict[str, Any]:
    """Per setup: accuracy, throughputs and ratios to chapter and peft as distributions over the seeds."""
    from softprompt.runs.seeds import distribution

    out: dict[str, Any] = {}
    summaries = {seed: summarise(results, targets, peaks) for seed, results in by_seed.items()}
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
                                                    "predict_vs_peft", "train_mfu", "predict_mfu")},
        }  # fmt: skip
        out[name] = {k: distribution(v) for k, v in figures.items() if v and None not in v}
    return out


# ---------------------------------------------------------------- tables


def _dist(d: dict[str, Any] | None, scale: float = 1, unit: str = "") -> str:
    if d is None:
        return "-"
    return f"{scale * d['mean']:.2f}{unit} ± {scale * d['sd']:.2f} ({scale * d['min']:.2f}-{scale * d['max']:.2f})"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _roofline_line(report: dict[str, Any]) -> str:
    roof = report.get("roofline") or {}
    peaks = roof.get("peak_gflops", {})
    machine = report["machine"]
    if not peaks:
        return "GEMM peak: not measured (--gemm-seconds 0); MFU columns left out"
    parts = [f"{dtype} {value:,.0f} GFLOP/s" for dtype, value in peaks.items()]
    if "bf16" not in peaks:
        parts.append("bf16 not measured (not native here)")
    return (
        f"GEMM peak ({roof.get('device', 'cpu')}, best of before/after the setups): {', '.join(parts)}; "
        f"CPU capability {machine.get('torch_cpu_capability') or roof.get('cpu_capability')} "
        f"(bf16 units: {', '.join(roof.get('cpu_bf16_flags') or []) or 'none'}); "
        f"torch threads {machine.get('torch_threads') or roof.get('threads')}. MFU = real tokens' model FLOPs / seconds / the peak of "
        "the row's dtype (training: 2 F_linear + 3 F_attn, frozen backbone; see benchmarks/model_flops.py)"
    )


def _breakdown_table(results: dict[str, Any]) -> list[str]:
    rows = [(n, r["train"].get("step_breakdown")) for n, r in results.items() if "error" not in r]
    rows = [(n, b) for n, b in rows if b and b.get("steps")]
    if not rows:
        return []
    lines = [
        "",
        "Training step, steady state (mean over every step but the first), ms: the model's forward and "
        "backward vs the rest (collation, clipping, scheduler, Trainer hooks, Python):",
        "",
        "| setup | step | forward | backward | optimizer | other | model share | other share | first step |",
        "|---|" + "---:|" * 8,
    ]
    for name, b in rows:
        lines.append(
            f"| {name} | {b['step_ms']:.1f} | {b['forward_ms']:.1f} | {b['backward_ms']:.1f} "
            f"| {b['optimizer_ms']:.1f} | {b['other_ms']:.1f} | {_pct(b['model_fraction'])} "
            f"| {_pct(b['other_fraction'])} | {b['first_step_ms']:.1f} |"
        )
    return lines


def markdown(report: dict[str, Any]) -> str:
    """The run as markdown: the main table, the roofline line, the step breakdown, the targets, seeds."""
    results, ratios = report["setups"], report["ratios"]
    cfg = report["config"]
    extras = ", bf16 for every setup" if cfg.get("bf16") else ""
    if cfg.get("repeats", 1) > 1:
        extras += f", median of {cfg['repeats']} repeats"
    lines = [
        f"Prompt tuning, {cfg['model_name']} on {cfg['data_name']} ({cfg['workload']}): {cfg['train_size']} train / "
        f"{cfg['test_size']} test rows, max length {cfg['max_length']}, {cfg['steps']} steps of batch "
        f"{cfg['batch_size']}, seed {cfg['seed']}{extras}; "
        f"{report['machine']['cpu']}, {report['machine']['usable_cpus']} CPUs"
        + (" (quick run: figures are for development only)" if report["quick"] else "")
        + ("" if report["same_subset"] else " WARNING: the setups did not see the same rows"),
        "",
        _roofline_line(report),
        "",
        "| setup | train samples/s | vs chapter | vs peft | vs peft-tuned | train MFU | predict samples/s | vs chapter "
        "| vs peft | vs peft-tuned | predict MFU | accuracy | vs peft (pts) | peak RSS MiB | vs peft | trainable params "
        "| artefact bytes |",
        "|---|" + "---:|" * 16,
    ]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} |" + " |" * 15)
            continue
        q = ratios[name]
        diff = q.get("accuracy_minus_peft")
        lines.append(
            f"| {name} | {r['train']['samples_per_s']:.2f} | {_x(q['train_vs_chapter'])} | {_x(q['train_vs_peft'])} "
            f"| {_x(q['train_vs_peft-tuned'])} | {_pct(q['train_mfu'])} | {r['predict']['samples_per_s']:.2f} "
            f"| {_x(q['predict_vs_chapter'])} | {_x(q['predict_vs_peft'])} | {_x(q['predict_vs_peft-tuned'])} "
            f"| {_pct(q['predict_mfu'])} "
            f"| {100 * r['accuracy']:.1f}% | {'-' if diff is None else f'{100 * diff:+.1f}'} "
            f"| {r['peak_rss_mib']['process']:.0f} | {_x(q.get('peak_rss_vs_peft'))} "
            f"| {r['trainable_parameters']:,} | {r['artefact']['bytes']:,} |"
        )
    lines += _breakdown_table(results)
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
