"""`curves.png`: training loss and the task's main eval metric per epoch, with an optional reference line.

Needs ``matplotlib`` (``pip install softprompt[plots]``); without it the plot is skipped with a warning.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

__all__ = ["plot_curves"]

logger = logging.getLogger(__name__)


def plot_curves(
    epochs: list[dict[str, Any]],
    path: str | os.PathLike[str],
    *,
    title: str,
    metric: str = "accuracy",
    reference: float | None = None,
    reference_label: str = "reference",
) -> Path | None:
    """Draw loss and ``eval_<metric>`` per epoch; returns the PNG path, or ``None`` without matplotlib.

    Args:
        epochs: One dict per epoch with ``epoch``, ``train_loss`` and ``eval_<metric>``.
        path: Where to write the PNG (atomically).
        title: Figure title.
        metric: The metric to draw (``accuracy``, ``pearson``, ``f1_micro``...).
        reference: A published figure for the same metric, drawn as a dashed line (e.g. the
            published result an example compares itself with); ``None`` draws none.
        reference_label: Legend text for that line.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: skipping %s (pip install matplotlib)", path)
        return None
    from softprompt.utils.atomic import atomic_write_bytes

    xs = [e["epoch"] for e in epochs]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_loss.plot(xs, [e.get("train_loss") for e in epochs], marker="o", color="tab:blue")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="training loss")
    scale, unit = (
        (100, " (%)") if metric in ("accuracy", "f1", "f1_micro", "f1_macro", "exact_match") else (1, "")
    )
    ax_acc.plot(
        xs, [scale * e[f"eval_{metric}"] for e in epochs], marker="o", color="tab:green", label="this run"
    )
    if reference is not None:
        ax_acc.axhline(
            scale * reference,
            ls="--",
            color="tab:red",
            label=f"{reference_label}: {scale * reference:.3g}{unit.strip(' ()')}",
        )
    ax_acc.set(xlabel="epoch", ylabel=f"eval {metric}{unit}", title=f"eval {metric}")
    ax_acc.legend(loc="lower right", fontsize=8)
    for ax in (ax_loss, ax_acc):
        ax.set_xticks(xs)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
