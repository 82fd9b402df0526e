"""Results as distributions: one run per seed, summarised as mean ± sd (min, max) per epoch and at the end.

Prompt tuning swings by points between seeds (Lester et al. 2021), so one run is one draw. Every seed's
run trains on the *same* data subset (``data_seed``, default: the config's own ``seed``), so the spread
measures the training's randomness (initialisation, batch order, dropout), not the subset's.

Examples:
    >>> distribution([0.80, 0.82, 0.84])["mean"]  # doctest: +ELLIPSIS
    0.82...
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from softprompt.utils.atomic import atomic_write_json
from softprompt.utils.inputs import parse_json, read_bounded_text

__all__ = [
    "check_seeds",
    "distribution",
    "finished_run",
    "format_seed_summary",
    "run_seeds",
    "summarize_runs",
]

logger = logging.getLogger(__name__)

SUMMARY_FILE = "seeds.json"
RESULTS_FILE = "results.json"
# where a run went and what to do with a used folder, not how it ran: a finished seed may differ in them
# (a study folder may be moved or copied, e.g. from a committed results folder into runs/)
_NOT_SETTINGS = ("output_dir", "resume", "overwrite")
# eval_* entries that are timings or counts, not results
_NOT_METRICS = ("runtime", "per_second", "samples", "loss", "epoch")


def check_seeds(seeds: Sequence[int]) -> list[int]:
    """``seeds`` as a list of distinct ints, or a ``ValueError`` that says what is wrong."""
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
        raise ValueError(f"seeds must be a non-empty list of integers, got {seeds!r}")
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or s < 0]
    if bad:
        raise ValueError(f"seeds must be non-negative integers, got {bad}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds repeat: {list(seeds)} (a repeated seed repeats the same run)")
    return list(seeds)


def distribution(values: Sequence[float]) -> dict[str, Any]:
    """``n``, ``mean``, sample standard deviation ``sd`` (0 for one value), ``min``, ``max`` and the ``values``.

    Examples:
        >>> d = distribution([1.0, 2.0, 3.0])
        >>> d["mean"], d["sd"], d["min"], d["max"]
        (2.0, 1.0, 1.0, 3.0)
    """
    values = [float(v) for v in values]
    if not values or not all(math.isfinite(v) for v in values):
        raise ValueError(f"need finite values, got {values}")
    return {
        "n": len(values),
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def _metric_keys(metrics: dict[str, Any]) -> list[str]:
    return sorted(
        k
        for k, v in metrics.items()
        if k.startswith("eval_") and isinstance(v, (int, float)) and not k.endswith(_NOT_METRICS)
    )


def summarize_runs(results: Sequence[dict[str, Any]], seeds: Sequence[int]) -> dict[str, Any]:
    """Mean ± sd over runs of one setting (``results.json`` contents of :func:`softprompt.run_prompt_tuning`
    or :func:`softprompt.run_finetune`, one per seed).

    Returns:
        ``{"metric", "seeds", "final": {eval_<m>: distribution}, "epochs": [{"epoch", eval_<m>: distribution}],
        "runs": [{"seed", "output_dir", eval_<metric>}]}``; ``final`` holds the reloaded artefacts' scores.
    """
    if len(results) != len(seeds) or not results:
        raise ValueError(f"{len(results)} results for {len(seeds)} seeds")
    metric = results[0]["metric"]
    finals = [r["reloaded_eval_metrics"] for r in results]
    final = {k: distribution([f[k] for f in finals]) for k in _metric_keys(finals[0])}
    epochs = []
    # epochs that every run reached (an early-stopped run ends sooner)
    for i in range(min(len(r["epochs"]) for r in results)):
        rows = [r["epochs"][i] for r in results]
        epochs.append(
            {
                "epoch": rows[0]["epoch"],
                **{k: distribution([row[k] for row in rows]) for k in _metric_keys(rows[0])},
            }
        )
    return {
        "metric": metric,
        "seeds": list(seeds),
        "final": final,
        "epochs": epochs,
        "runs": [
            {"seed": s, "output_dir": r["config"]["output_dir"], f"eval_{metric}": r[f"eval_{metric}"]}
            for s, r in zip(seeds, results)
        ],
    }


def run_seeds(cfg: Any, seeds: Sequence[int], run: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """Run ``run(cfg)`` once per seed (into ``<output_dir>/seed-<s>``) and write ``<output_dir>/seeds.json``.

    Args:
        cfg: A :class:`softprompt.RunConfig`; each run gets ``seed=s`` and keeps the data subset of
            ``cfg.data_seed`` (or of ``cfg.seed`` when that is unset).
        seeds: Distinct non-negative ints, e.g. ``[1, 2, 3]``.
        run: :func:`softprompt.run_prompt_tuning` or :func:`softprompt.run_finetune`.

    Returns:
        :func:`summarize_runs`'s summary plus ``"config"`` (the shared settings); ``{}`` on a
        ``torchrun`` rank other than 0.

    With ``cfg.resume`` a study continues across sittings: a seed whose folder holds a finished run of the
    same settings (its ``results.json``) is kept as it is, a seed stopped after a checkpoint continues from
    it, and the others start.

    Raises:
        ValueError: seeds that are not distinct non-negative ints; with ``cfg.resume``, a seed's folder
            holding a finished run of other settings.

    Examples:
        >>> import pandas as pd
        >>> from softprompt import RunConfig, run_prompt_tuning
        >>> frame = pd.DataFrame({"text": ["a great product", "a dull product"] * 8, "label": [1, 0] * 8})
        >>> frame.to_csv("texts.csv", index=False)
        >>> cfg = RunConfig(model="bert-base-uncased", data="texts.csv", holdout=0.25, epochs=1,
        ...                 num_virtual_tokens=4, max_length=32, output_dir="runs/seeds")
        >>> summary = run_seeds(cfg, [1, 2], run_prompt_tuning)
        >>> print(format_seed_summary(summary))
        2 seeds [1, 2]: accuracy, mean ± sd (min, max)
          epoch 1: ...
          final (reloaded artefacts): ...
    """
    seeds = check_seeds(seeds)
    out = Path(cfg.output_dir)
    data_seed = cfg.seed if cfg.data_seed is None else cfg.data_seed
    results, kept = [], []
    for seed in seeds:
        one = dataclasses.replace(cfg, seed=seed, data_seed=data_seed, output_dir=str(out / f"seed-{seed}"))
        if cfg.resume:  # a study across sittings: keep finished seeds, continue a stopped one, start the rest
            finished = finished_run(one)
            if finished is not None:
                logger.info("seed %d: %s holds a finished run of these settings; kept", seed, one.output_dir)
                results.append(finished)
                kept.append(seed)
                continue
            if any(Path(one.output_dir).glob("checkpoint-*")):
                logger.info("seed %d: continuing from the last checkpoint in %s", seed, one.output_dir)
            else:  # not started, or stopped before its first checkpoint
                one = dataclasses.replace(one, resume=False)
        result = run(one)
        if not result:  # not rank 0 under torchrun
            return {}
        results.append(result)
    summary = summarize_runs(results, seeds)
    summary["config"] = {**dataclasses.asdict(cfg), "seed": None, "data_seed": data_seed}
    summary["versions"] = results[0].get("versions", {})
    if kept:  # finished in an earlier sitting (``resume``): their results.json were read, not rerun
        summary["kept_seeds"] = kept
    atomic_write_json(out / SUMMARY_FILE, summary)
    return summary


def finished_run(cfg: Any) -> dict[str, Any] | None:
    """The ``results.json`` of a finished run of ``cfg``'s settings in ``cfg.output_dir``; ``None`` if none.

    Args:
        cfg: One seed's :class:`~softprompt.RunConfig` (its ``output_dir`` is that seed's folder).

    Returns:
        The recorded results, or ``None`` when the folder has no ``results.json``.

    Raises:
        ValueError: the file is not a run's results (bounded JSON with a ``config`` mapping), or it records
            other settings than ``cfg`` (the message names them): never a study of two recipes mixed.

    Examples:
        >>> finished_run(dataclasses.replace(cfg, output_dir="runs/seeds/seed-1"))["config"]["seed"]  # doctest: +SKIP
        1
    """
    path = Path(cfg.output_dir) / RESULTS_FILE
    if not path.is_file():
        return None
    results = parse_json(read_bounded_text(path, "run's results"), str(path))
    if not isinstance(results, dict) or not isinstance(results.get("config"), dict):
        raise ValueError(f"{str(path)!r}: not a run's results.json (no 'config' mapping)")
    want = parse_json(json.dumps(cfg.to_dict()), "settings")  # as JSON reads them back: tuples are lists
    # a setting added after the run was recorded ran as its default does (new settings default to the old way)
    recorded = {**_defaults(cfg), **results["config"]}
    differ = sorted(k for k in want if k not in _NOT_SETTINGS and recorded.get(k) != want[k])
    if differ:
        shown = "; ".join(f"{k}: {recorded.get(k)!r} there, {want[k]!r} now" for k in differ[:5])
        raise ValueError(
            f"{str(path)!r} holds a finished run with other settings ({shown}); continue it with the same "
            "settings, or choose another --output-dir (--overwrite starts every seed over)"
        )
    return results


def _defaults(cfg: Any) -> dict[str, Any]:
    """The JSON form of ``cfg``'s class defaults, for the settings that have one."""
    defaults = {}
    for f in dataclasses.fields(cfg):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
    return parse_json(json.dumps(defaults), "defaults")


def _fmt(d: dict[str, Any]) -> str:
    return f"{d['mean']:.4f} ± {d['sd']:.4f} (min {d['min']:.4f}, max {d['max']:.4f})"


def format_seed_summary(summary: dict[str, Any]) -> str:
    """A few lines for a terminal: the main metric per epoch and at the end, mean ± sd (min, max).

    Args:
        summary: What :func:`run_seeds` returns (``seeds.json``'s content).

    Returns:
        The text, one line per epoch and one for the reloaded artefacts.

    Examples:
        >>> summary = {"metric": "accuracy", "seeds": [1, 2, 3], "epochs": [],
        ...            "final": {"eval_accuracy": {"mean": 0.818, "sd": 0.006, "min": 0.812, "max": 0.824, "n": 3}}}
        >>> print(format_seed_summary(summary))
        3 seeds [1, 2, 3]: accuracy, mean ± sd (min, max)
          final (reloaded artefacts): ...
    """
    key = f"eval_{summary['metric']}"
    lines = [f"{len(summary['seeds'])} seeds {summary['seeds']}: {summary['metric']}, mean ± sd (min, max)"]
    if summary.get("kept_seeds"):
        lines.append(f"  (seeds {summary['kept_seeds']} kept from an earlier sitting, not rerun)")
    lines += [f"  epoch {row['epoch']}: {_fmt(row[key])}" for row in summary["epochs"] if key in row]
    lines.append(f"  final (reloaded artefacts): {_fmt(summary['final'][key])}")
    return "\n".join(lines)
