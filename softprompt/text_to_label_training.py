"""Training a text-to-label prompt with ``Trainer``: the loss is the class word's tokens', each evaluation generates.

``Trainer`` evaluates with the model's loss and, for metrics, :meth:`TextToLabelTrainer.prediction_step`:
each evaluation row's input (a causal LM's row without its target) is given to the wrapper's
greedy ``generate`` exactly as :func:`softprompt.text_to_label.predict_labels` gives it, and the
generated text is read by exact match. So the accuracy of every epoch is the accuracy that
``predict`` and ``evaluate_model`` give for the same prompt and rows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from softprompt.data.targets import encode_targets
from softprompt.layout import IGNORE_INDEX
from softprompt.text_to_label import generate_words, prompt_targets, text_to_label_scores
from softprompt.trainer import PromptTrainer

__all__ = ["TextToLabelTrainer", "prompt_inputs", "text_to_label_trainer"]


def prompt_inputs(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """A causal LM's training rows ``(B, T)`` without their targets: the input tokens alone, left-padded.

    The input is each row's real tokens whose label is -100 (the target follows them); they are
    moved to the end of the row, padding first, as generation wants them.

    Example:
        >>> prompt_inputs(torch.tensor([[5, 6, 7, 2, 0]]), torch.tensor([[1, 1, 1, 1, 0]]),
        ...               torch.tensor([[-100, -100, 7, 2, -100]]))
        (tensor([[0, 7, 2, 5, 6]]), tensor([[0, 0, 0, 1, 1]]))
    """
    keep = (attention_mask.bool() & (labels == IGNORE_INDEX)).long()  # (B, T)
    order = torch.sort(keep, dim=1, stable=True).indices  # (B, T): dropped columns first, inputs after
    return input_ids.gather(1, order), keep.gather(1, order)


class TextToLabelTrainer(PromptTrainer):
    """:class:`~softprompt.PromptTrainer` whose evaluation generates each row's class word.

    ``prediction_step`` returns, per row, the class whose word was generated (``-1``: no class) and
    the class of the row's target ids; ``compute_metrics`` gets those two arrays.

    Args:
        model: The wrapper of a language model, with a text-to-label prompt active.
        *args, **kwargs: As for :class:`~softprompt.PromptTrainer`.
        targets: Each class's target ids (:func:`softprompt.data.targets.encode_targets`), in class order.
    """

    def __init__(self, model: Any, *args: Any, targets: list[list[int]], **kwargs: Any) -> None:
        super().__init__(model, *args, **kwargs)
        self.words = prompt_targets(model)
        self.classes = {tuple(ids): k for k, ids in enumerate(targets)}
        self.budget = max(len(ids) for ids in targets)
        self.causal = model.generation_kind == "causal"

    def prediction_step(
        self,
        model: Any,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        loss = super().prediction_step(model, inputs, True, ignore_keys=ignore_keys)[0]
        if prediction_loss_only:
            return loss, None, None
        inputs = self._prepare_inputs(inputs)
        ids, mask, labels = inputs["input_ids"], inputs["attention_mask"], inputs["labels"]
        if self.causal:
            ids, mask = prompt_inputs(ids, mask, labels)
        texts, _ = generate_words(self._wrapper(), ids, mask, prompt=None, budget=self.budget)
        index = {word: k for k, word in enumerate(self.words)}
        predicted = torch.tensor([index.get(text, -1) for text in texts], device=labels.device)  # (B,)
        gold = []
        for row in labels.tolist():
            target = tuple(t for t in row if t != IGNORE_INDEX)
            if target not in self.classes:
                raise ValueError(
                    f"an evaluation row's target ids {list(target)} are no class word of this prompt ({self.words}); "
                    "tokenize the evaluation data with the prompt's words (softprompt.tokenize_text_to_label)"
                )
            gold.append(self.classes[target])
        return loss, predicted, torch.tensor(gold, device=labels.device)


def _compute_metrics(num_classes: int, eval_pred: Any) -> dict[str, float]:
    predicted = [None if int(p) < 0 else int(p) for p in np.asarray(eval_pred.predictions).reshape(-1)]
    return text_to_label_scores(predicted, np.asarray(eval_pred.label_ids).reshape(-1).tolist(), num_classes)


def text_to_label_trainer(
    wrapper: Any, head_learning_rate: float | None, compute_metrics: Any | None
) -> tuple[Callable[..., TextToLabelTrainer], Callable[[Any], dict[str, float]] | Any]:
    """What :func:`softprompt.train_prompt` builds ``Trainer`` with for a text-to-label prompt: the trainer
    class, and the metrics (accuracy, macro F1, unknown; ``compute_metrics`` replaces them, and gets
    the predicted class ids, ``-1`` for none, and the true ones).

    Raises:
        ValueError: the active prompt is not text-to-label, or its words do not survive the tokenizer.
    """
    decoder_only = wrapper.generation_kind == "causal"
    targets = encode_targets(wrapper.tokenizer, prompt_targets(wrapper), decoder_only=decoder_only)
    trainer = functools.partial(TextToLabelTrainer, head_learning_rate=head_learning_rate, targets=targets)
    return trainer, compute_metrics or functools.partial(_compute_metrics, len(targets))
