"""Where the training order comes from: length-grouped batches drawn from ``(seed, epoch)`` alone.

``transformers``' ``LengthGroupedSampler`` draws each epoch's order from torch's global random state at
the moment the epoch starts. A run resumed from a mid-epoch checkpoint starts that epoch from another
random state, draws another order, and then skips the first batches *of that other order*: it trains on
different batches than the uninterrupted run did. Here each epoch's order is a pure function of the seed
and the epoch number (``Trainer`` calls ``set_epoch`` before every epoch, resumed or not), so resuming
from any step replays exactly the batches of the uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import SequentialSampler
from transformers.trainer_pt_utils import LengthGroupedSampler, get_length_grouped_indices

__all__ = ["SeededLengthGroupedSampler", "SeededSamplingMixin"]


class SeededLengthGroupedSampler(LengthGroupedSampler):
    """``LengthGroupedSampler`` whose order for epoch ``e`` depends only on ``(seed, e)``.

    Examples:
        >>> s = SeededLengthGroupedSampler(2, lengths=[5, 1, 4, 2, 3, 6], seed=0)
        >>> s.set_epoch(1)
        >>> list(s) == list(s)  # the same epoch, the same order
        True
    """

    def __init__(self, batch_size: int, *, lengths: list[int], seed: int) -> None:
        super().__init__(batch_size, lengths=lengths)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch whose batch order :meth:`__iter__` gives (``Trainer`` calls it each epoch)."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=generator))


class SeededSamplingMixin:
    """For a ``Trainer`` subclass: seeded length-grouped training batches, and predictions in dataset order.

    ``train_sampling_strategy="group_by_length"`` uses :class:`SeededLengthGroupedSampler`, seeded with
    ``args.data_seed`` (else ``args.seed``). transformers 5.25 also length-groups the *evaluation* sampler
    under that flag: harmless for ``evaluate`` (predictions and labels move together), but ``predict`` would
    return its rows shuffled, with nothing to say which is which; here ``predict`` reads the dataset in order.
    """

    _predicting = False

    def predict(self, test_dataset: Any, *args: Any, **kwargs: Any) -> Any:
        """``Trainer.predict``, with row ``i`` of the predictions for row ``i`` of ``test_dataset``.

        Args:
            test_dataset: Tokenized rows (as for ``Trainer.predict``).
            *args: ``Trainer.predict``'s (``ignore_keys``, ``metric_key_prefix``).
            **kwargs: ``Trainer.predict``'s.

        Returns:
            ``Trainer.predict``'s ``PredictionOutput``, in the dataset's row order.

        Examples:
            >>> from softprompt import PromptTrainer, default_training_args
            >>> args = default_training_args("runs/pt", learning_rate=1e-2, has_eval=False)  # length-grouped
            >>> trainer = PromptTrainer(wrapper, args=args, processing_class=tokenizer)
            >>> logits = trainer.predict(test_ds).predictions  # (rows, classes)
            >>> alone = torch.cat([wrapper(**tokenizer(t, return_tensors="pt")).logits for t in data.eval["text"]])
            >>> bool(abs(logits - alone.detach().numpy()).max() < 1e-4)  # row i is text i
            True
        """
        self._predicting = True
        try:
            return super().predict(test_dataset, *args, **kwargs)  # type: ignore[misc]
        finally:
            self._predicting = False

    def _get_eval_sampler(self, eval_dataset: Any) -> Any:
        if self._predicting and eval_dataset is not None and self.args.world_size <= 1:  # type: ignore[attr-defined]
            return SequentialSampler(eval_dataset)
        return super()._get_eval_sampler(eval_dataset)  # type: ignore[misc]

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        sampler = super()._get_train_sampler(train_dataset)  # type: ignore[misc]
        if type(sampler) is LengthGroupedSampler:
            args = self.args  # type: ignore[attr-defined]
            seed = args.data_seed if args.data_seed is not None else args.seed
            return SeededLengthGroupedSampler(sampler.batch_size, lengths=sampler.lengths, seed=seed)
        return sampler
