"""Where a training step's time goes: the model's forward, its backward, the optimizer, and everything else.

:class:`StepTimer` hooks a model and its optimizer once (no method is replaced) and splits each step's
wall time, measured from the end of one step to the end of the next, into:

- ``forward``: the model call, from its forward pre-hook to its forward hook (loss included when
  the model computes it);
- ``backward``: from the gradient reaching the model's output (a hook on its ``loss``, else its
  ``logits``) to the last trainable parameter's gradient being accumulated
  (``register_post_accumulate_grad_hook``);
- ``optimizer``: ``optimizer.step()`` (the optimizer's step pre- and post-hooks in a plain loop,
  ``Trainer``'s ``on_pre_optimizer_step`` and ``on_optimizer_step`` events under ``Trainer``);
- ``other``: the rest: fetching and collating the batch, moving it, gradient clipping, ``zero_grad``,
  the LR scheduler, ``loss.item()``, ``Trainer``'s callbacks and bookkeeping, Python.

The hooks add a few Python calls per step. On a GPU the split is only meaningful with synchronisation,
which this does not add: there ``backward`` and ``optimizer`` measure launch time, not kernel time.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable
from typing import Any

import torch
import transformers
from torch import nn

__all__ = ["StepTimer", "StepTimerCallback"]

PARTS = ("forward", "backward", "optimizer")


class StepTimer:
    """Per-step forward / backward / optimizer / other seconds of a training loop.

    Call :meth:`start` before the first step (or let :class:`StepTimerCallback` do it), :meth:`step_end`
    after each optimizer step, and read :meth:`summary`.

    Example:
        >>> timer = StepTimer(model, [p for p in model.parameters() if p.requires_grad], optimizer)  # doctest: +SKIP
    """

    def __init__(
        self, model: nn.Module, params: Iterable[nn.Parameter], optimizer: torch.optim.Optimizer | None = None
    ) -> None:
        self._now = time.perf_counter
        self._current = dict.fromkeys(PARTS, 0.0)
        self._steps: list[dict[str, float]] = []
        self._last_end: float | None = None
        self._forward_start = self._backward_start = self._last_grad = self._optimizer_start = None
        model.register_forward_pre_hook(self._on_forward_start)
        model.register_forward_hook(self._on_forward_end)
        for p in params:
            p.register_post_accumulate_grad_hook(self._on_grad)
        if optimizer is not None:
            self.attach_optimizer(optimizer)

    def attach_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Time ``optimizer.step()`` through the optimizer's own step hooks."""
        optimizer.register_step_pre_hook(lambda *_: self.optimizer_start())
        optimizer.register_step_post_hook(lambda *_: self.optimizer_end())

    def optimizer_start(self) -> None:
        """Mark the start of the optimizer step."""
        self._optimizer_start = self._now()

    def optimizer_end(self) -> None:
        """Mark its end."""
        if self._optimizer_start is not None:
            self._current["optimizer"] += self._now() - self._optimizer_start
            self._optimizer_start = None

    # ---------------------------------------------------------------- hooks

    def _on_forward_start(self, module: nn.Module, args: Any) -> None:
        if torch.is_grad_enabled():  # training forwards only, not prediction
            self._forward_start = self._now()

    def _on_forward_end(self, module: nn.Module, args: Any, output: Any) -> None:
        if self._forward_start is None:
            return
        self._current["forward"] += self._now() - self._forward_start
        self._forward_start = None
        # the loss when the model computes it (under accelerate's autocast the returned logits are an fp32
        # copy that the loss never saw), else the output itself
        first = getattr(output, "loss", None) if not isinstance(output, torch.Tensor) else output
        if first is None:
            first = getattr(output, "logits", None)
        if isinstance(first, torch.Tensor) and first.requires_grad:
            first.register_hook(self._on_backward_start)

    def _on_backward_start(self, grad: torch.Tensor) -> None:
        self._backward_start = self._now()

    def _on_grad(self, param: torch.Tensor) -> None:
        self._last_grad = self._now()

    # ---------------------------------------------------------------- steps

    def start(self) -> None:
        """Mark the start of the first step."""
        self._last_end = self._now()

    def step_end(self) -> None:
        """Close the current step: its wall time since the previous step's end, split into the parts."""
        now = self._now()
        if self._backward_start is not None and self._last_grad is not None:
            self._current["backward"] += max(0.0, self._last_grad - self._backward_start)
        self._backward_start = self._last_grad = None
        if self._last_end is not None:
            step = {"step": now - self._last_end, **self._current}
            step["other"] = step["step"] - sum(self._current.values())
            self._steps.append(step)
        self._last_end = now
        self._current = dict.fromkeys(PARTS, 0.0)

    def summary(self) -> dict[str, Any]:
        """Steady-state means over every step but the first (warm-up), in milliseconds, and the first apart."""
        if not self._steps:
            return {"steps": 0}
        steady = self._steps[1:] or self._steps
        keys = ("step", *PARTS, "other")
        means = {f"{k}_ms": 1000 * statistics.fmean(s[k] for s in steady) for k in keys}
        total = means["step_ms"]
        return {
            "steps": len(self._steps),
            "steady_steps": len(steady),
            **means,
            "model_fraction": (means["forward_ms"] + means["backward_ms"]) / total if total else None,
            "other_fraction": means["other_ms"] / total if total else None,
            "first_step_ms": 1000 * self._steps[0]["step"],
        }


class StepTimerCallback(transformers.TrainerCallback):
    """Drive a :class:`StepTimer` from ``Trainer``'s events (its optimizer is created after the callbacks)."""

    def __init__(self, timer: StepTimer) -> None:
        self.timer = timer

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.timer.start()

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.timer.optimizer_start()

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.timer.optimizer_end()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.timer.step_end()
