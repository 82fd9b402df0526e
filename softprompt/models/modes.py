"""``eval_mode``: a model in evaluation mode for one block, every module's own mode restored after it.

Prediction, probes and head fits must run with dropout off, and must leave the model exactly as they
found it. ``model.train(was_training)`` does not: it sets *every* module to the top-level flag, so a
backbone a user put in ``eval()`` inside a training model (or one dropout left on for Monte Carlo
dropout) comes back in the wrong mode, and later training silently changes. ``eval_mode`` records the
modules that were training and gives exactly those their flag back. A model already in ``eval()``
costs one walk over its modules and no switch.

Calls that overlap on one model (threads predicting at once) share one switch: the first to enter
records and switches, the last to leave restores, so no call has dropout turned back on under it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from torch import nn

__all__ = ["eval_mode"]

_LOCK = threading.Lock()
_OPEN: dict[int, tuple[int, list[nn.Module]]] = {}  # id(model) -> (blocks open on it, modules to give back)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run a block with ``model`` in evaluation mode; afterwards each module is in the mode it was in before.

    The switch calls ``model.eval()`` (so a module's own ``train`` override runs) only when some module
    is training; the restore sets the recorded modules' ``training`` flags back, whatever ``eval()`` did,
    when the last block open on ``model`` closes (blocks may overlap across threads).

    Args:
        model: Any ``nn.Module``.

    Yields:
        ``model`` itself, in evaluation mode.

    Examples:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1)).train()
        >>> model[0].eval()  # a part the user keeps in eval mode while training the rest
        Linear(in_features=2, out_features=2, bias=True)
        >>> with eval_mode(model):
        ...     [m.training for m in model.modules()]
        [False, False, False]
        >>> [m.training for m in model.modules()]  # as before, not all True
        [True, False, True]
    """
    key = id(model)
    with _LOCK:
        count, training = _OPEN.get(key, (0, []))
        if count == 0:
            training = [module for module in model.modules() if module.training]  # the ones to give back
            if training:
                model.eval()
        _OPEN[key] = (count + 1, training)
    try:
        yield model
    finally:
        with _LOCK:
            count, training = _OPEN.pop(key)
            if count > 1:
                _OPEN[key] = (count - 1, training)
            else:
                for module in training:
                    module.training = True
