"""Answer spans over token positions: labels moved past the virtual tokens, and the best (start, end) pair of a window.

Extractive question answering labels each window with the token where its answer starts and the
token where it ends (``[CLS]`` when the answer is not in the window). The wrapper splices ``N``
virtual tokens in at ``at``, so those positions must move with the tokens they point at
(:func:`answer_positions`); its returned ``start_logits``/``end_logits`` have the virtual positions
removed again, so :func:`best_span` reads them in the user's own token positions.
"""

from __future__ import annotations

from typing import Any

import torch

from softprompt.core.constants import ANSWER_POSITION_KEYS

__all__ = [
    "ANSWER_POSITION_KEYS",
    "MAX_ANSWER_LENGTH",
    "answer_positions",
    "best_span",
    "check_max_answer_length",
    "span_probabilities",
]

# the keyword arguments of every *ForQuestionAnswering forward that carry the answer's token positions
# longest answer, in tokens, that a prediction may have: the SQuAD recipe's max_answer_length
MAX_ANSWER_LENGTH = 30


def answer_positions(
    kwargs: dict[str, Any], *, at: int, n: int, length: int, fitted: dict[str, Any]
) -> dict[str, torch.Tensor]:
    """Pop ``start_positions``/``end_positions`` from ``kwargs``; return them moved past the ``n`` virtual tokens.

    A position at or after the insertion point ``at`` moves by ``n``; one before it (``[CLS]`` with
    the default placement) stays. The result goes into the spliced inputs, so a mixed-prompt batch
    hands each prompt its own rows.

    Args:
        kwargs: The wrapper's extra forward arguments; the two keys are removed from it.
        at: Where the virtual tokens go (0 or 1).
        n: How many virtual tokens.
        length: ``T``, the input's length before the splice.
        fitted: The sequences after :func:`softprompt.models.layout.fit_length`: ``inputs_embeds`` is
            shorter than ``T`` when ``overflow="truncate"`` cut the input.

    Returns:
        ``{"start_positions": (B,), "end_positions": (B,)}`` moved, or ``{}`` when neither was given.

    Raises:
        ValueError: only one of the two given, a position outside ``[0, T)`` (the model would clamp
            it to ``[CLS]`` or leave it out of the loss without a word; point unanswerable windows
            at ``[CLS]``, as :func:`softprompt.data.qa.tokenize_qa` does), or an input that was cut
            to fit (the positions would point at other tokens).

    Examples:
        >>> kwargs = {"start_positions": torch.tensor([0, 5]), "end_positions": torch.tensor([0, 7])}
        >>> fitted = {"inputs_embeds": torch.zeros(2, 9, 4)}  # (B, T, E), not cut
        >>> {k: v.tolist() for k, v in answer_positions(kwargs, at=1, n=3, length=9, fitted=fitted).items()}
        {'start_positions': [0, 8], 'end_positions': [0, 10]}
    """
    values = {key: kwargs.pop(key, None) for key in ANSWER_POSITION_KEYS}
    given = [key for key, value in values.items() if value is not None]
    if not given:
        return {}
    if len(given) == 1:
        raise ValueError(f"got {given[0]} without its partner; pass both start_positions and end_positions")
    kept = fitted["inputs_embeds"].shape[1]
    if kept != length:
        raise ValueError(
            f"an input of {length} tokens was cut to {kept} to fit the virtual tokens, so its answer positions "
            "would point at other tokens; tokenize question-answering windows with the room the prompt leaves "
            "(softprompt.tokenize_dataset(..., num_virtual_tokens=N) or wrapper.max_input_length())"
        )
    out = {}
    for key, value in values.items():
        positions = torch.as_tensor(value)
        if positions.is_floating_point() or positions.dim() > 2:
            raise ValueError(
                f"{key} must be integer token positions of shape (B,), got {tuple(positions.shape)}"
            )
        positions = (
            positions.reshape(positions.shape[0]) if positions.dim() == 2 else positions
        )  # (B, 1) -> (B,)
        bad = (positions < 0) | (positions >= length)
        if bool(bad.any()):
            raise ValueError(
                f"{key} {positions[bad].tolist()[:5]} lie outside the {length} input tokens; point a window without "
                "its answer at [CLS] (position 0), as softprompt.tokenize_dataset does"
            )
        out[key] = torch.where(positions >= at, positions + n, positions)  # (B,)
    return out


def check_max_answer_length(max_answer_length: Any) -> None:
    """Raise ``ValueError`` unless ``max_answer_length`` is a positive int (the longest answer, in tokens)."""
    if isinstance(max_answer_length, bool) or not isinstance(max_answer_length, int) or max_answer_length < 1:
        raise ValueError(f"max_answer_length must be a positive int, got {max_answer_length!r}")


def span_probabilities(
    start_logits: torch.Tensor, end_logits: torch.Tensor, allowed: torch.Tensor, null: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Start and end probabilities of one window, as transformers' question-answering pipeline computes them.

    Softmax over the ``allowed`` positions (the context tokens) and the ``null`` position (``[CLS]``),
    every other position (question, separators, padding) at zero; then ``[CLS]``'s own
    probability is set to zero, so it takes part in the normalisation but is never an answer.

    Args:
        start_logits: ``(T,)`` one window's logits.
        end_logits: ``(T,)`` one window's logits.
        allowed: ``(T,)`` bool, the positions an answer may start or end at.
        null: ``[CLS]``'s position, or ``None``.

    Returns:
        ``(p_start, p_end)``, each ``(T,)`` float32.
    """
    normalised = allowed.clone()
    if null is not None:
        normalised[null] = True
    out = []
    for logits in (start_logits, end_logits):
        probs = torch.softmax(logits.float().masked_fill(~normalised, float("-inf")), dim=-1)  # (T,)
        if null is not None:
            probs[null] = 0.0
        out.append(probs)
    return out[0], out[1]


def best_span(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    allowed: torch.Tensor,
    *,
    null: int | None = None,
    max_answer_length: int = MAX_ANSWER_LENGTH,
) -> tuple[int, int, float] | None:
    """The most probable answer span of one window: ``(start, end, score)`` token positions, or ``None``.

    The score of a span is ``p_start[start] * p_end[end]`` (:func:`span_probabilities`); a span
    must start and end at ``allowed`` positions, with ``start <= end < start + max_answer_length``.
    Ties go to the lowest start, then the lowest end.

    Args:
        start_logits: ``(T,)`` one window's logits, in its own token positions.
        end_logits: ``(T,)`` one window's logits, in its own token positions.
        allowed: ``(T,)`` bool: the window's context tokens.
        null: ``[CLS]``'s position (normalised over, never an answer), or ``None``.
        max_answer_length: Longest answer in tokens.

    Raises:
        ValueError: ``max_answer_length`` < 1, or shapes that differ.

    Examples:
        >>> logits = torch.tensor([0.0, 0.0, 2.0, 1.0, 3.0])
        >>> allowed = torch.tensor([False, False, True, True, True])
        >>> start, end, score = best_span(logits, logits.flip(0), allowed, null=0, max_answer_length=2)
        >>> start, end
        (2, 2)
    """
    check_max_answer_length(max_answer_length)
    if not (start_logits.shape == end_logits.shape == allowed.shape) or allowed.dim() != 1:
        raise ValueError(
            f"start logits {tuple(start_logits.shape)}, end logits {tuple(end_logits.shape)} and mask "
            f"{tuple(allowed.shape)} must be one (T,) window each"
        )
    if not bool(allowed.any()):
        return None
    p_start, p_end = span_probabilities(start_logits, end_logits, allowed, null)
    scores = p_start[:, None] * p_end[None, :]  # (T, T): row = start, column = end
    # end >= start and end - start < max_answer_length: a band above the diagonal
    band = torch.triu(torch.ones_like(scores, dtype=torch.bool)) & ~torch.triu(
        torch.ones_like(scores, dtype=torch.bool), diagonal=max_answer_length
    )
    valid = band & allowed[:, None] & allowed[None, :]
    scores = scores.masked_fill(~valid, -1.0)  # below every real score (>= 0)
    flat = int(torch.argmax(scores))  # the first maximum in row-major order: lowest start, then end
    start, end = divmod(flat, scores.shape[1])
    return start, end, float(scores[start, end])
