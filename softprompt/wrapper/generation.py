"""Language models with a soft prompt: `generate`, and how their batches and prompts are set up.

A seq2seq model (T5, BART) generates from its encoder's input with the prompt spliced in (the same
splice as :meth:`SoftPromptWrapper.forward`); a causal LM (GPT-2, Llama, Qwen2, Mistral) from its
input embeddings with the prompt spliced in after BOS, on left-aligned rows with the positions each
text has alone (:class:`~softprompt.models.decoder.DecoderRows`). Both call the model's own ``generate``
with ``inputs_embeds``, so greedy search, beam search and every other ``generate`` option are
transformers' own. A language model's head is frozen and shared, so one backbone serves many
prompts, even within one batch (``prompt_names=[...]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from softprompt.core.task import Task
from softprompt.models import backbone, layout
from softprompt.models.decoder import CausalLMRows, DecoderRows
from softprompt.models.seq2seq import Seq2SeqRows

if TYPE_CHECKING:
    from torch import nn

    from softprompt.core.config import SoftPromptConfig
    from softprompt.models.slot import PromptSlot
    from softprompt.models.support import ModelSupport

__all__ = ["REFUSED_GENERATE_ARGUMENTS", "PromptGenerationMixin"]

# generate() builds these itself from the prompted inputs; a caller's own would not line up with them
REFUSED_GENERATE_ARGUMENTS = ("inputs_embeds", "encoder_outputs", "position_ids", "token_type_ids", "cache",
                              "past_key_values", "labels")  # fmt: skip


class PromptGenerationMixin:
    """``generate`` for :class:`~softprompt.SoftPromptWrapper`, and the parts of it that differ per architecture:
    the batch layout (:meth:`_rows`) and a language model's task (:meth:`_task_and_labels`)."""

    model: nn.Module
    tokenizer: Any
    _support: ModelSupport

    def can_generate(self) -> bool:
        """Whether the wrapped model is a language model (asked by ``transformers.pipeline``).

        Returns:
            ``True`` for a causal or sequence-to-sequence language model.

        Examples:
            >>> wrapper.can_generate()
            False
        """
        return self._support.generation is not None

    @property
    def generation_kind(self) -> str | None:
        """``"seq2seq"`` (T5, BART), ``"causal"`` (a decoder-only LM) or ``None`` (the model does not generate)."""
        return self._support.generation

    @property
    def generation_config(self) -> Any:
        """The wrapped model's ``GenerationConfig`` (``None`` for a model that does not generate)."""
        return getattr(self.model, "generation_config", None)

    def _rows(self, attention_mask: torch.Tensor, n: int) -> Any:
        """How a batch of this architecture runs: as given (encoders, a seq2seq model's encoder) or left-aligned."""
        if self._support.generation == "seq2seq":
            return Seq2SeqRows()
        if self._support.generation == "causal":
            return CausalLMRows(attention_mask, n)
        return DecoderRows(attention_mask) if self._support.decoder_only else layout.EncoderRows()

    def _task_and_labels(self, config: SoftPromptConfig) -> tuple[Task | None, dict[int, str] | None]:
        """The task and class names of a new prompt: the head's; a language model's is text-to-label when
        its config names classes (``id2label``) or ``config.label_words`` does, else none (plain generation).

        Raises:
            ValueError: a deep prompt on a language model, or label words that disagree with the class names.
        """
        model = self.model
        if self._support.generation is None:
            has_head = bool(backbone.head_parameter_names(model))
            id2label = getattr(model.config, "id2label", None) if has_head else None
            return backbone.sequence_task(model), id2label
        _refuse_deep(config.deep, type(model).__name__)
        from softprompt.tasks.label_words import text_to_label_names

        names = text_to_label_names(getattr(model.config, "id2label", None), config.label_words)
        return (Task("text-to-label"), names) if names else (None, None)

    def add_slot(self, name: str, slot: PromptSlot) -> None:
        """Hold ``slot`` under ``name`` (replacing a slot of that name), on the model's device.

        A language model takes only what it runs exactly: text-to-label prompts or prompts without a task,
        and no deep prompts.

        Args:
            name: The slot's name: a non-empty string without ``.``.
            slot: The prompt, its head, task and labels.

        Raises:
            ValueError: a bad name, ``after_cls`` without a ``[CLS]`` id, deep vectors that do not fit the model,
                or, on a language model, a deep prompt or a task other than text-to-label.

        Examples:
            >>> slot = wrapper.slot()
            >>> wrapper.add_slot("copy", slot)
            >>> wrapper.prompt_names
            ['default', 'copy']
        """
        if self._support.generation is not None:
            _refuse_deep(slot.config.deep, type(self.model).__name__)
            if slot.task is not None and not slot.task.is_text_to_label:
                raise ValueError(
                    f"prompt {name!r} is a {slot.task.type.value} prompt; {type(self.model).__name__} is a language "
                    "model, which runs text-to-label prompts or prompts without a task"
                )
        super().add_slot(name, slot)  # type: ignore[misc]

    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        prompt: str | None = None,
        prompt_names: Sequence[str] | None = None,
        **generate_kwargs: Any,
    ) -> Any:
        """The model's ``generate`` with the prompt spliced in (the active one, ``prompt``, or one per row).

        Greedy and beam search, ``max_new_tokens``, ``num_beams``, ``do_sample``... are transformers'
        own: the wrapped model's ``generate`` runs on the prompted ``inputs_embeds``. A seq2seq model
        returns what its ``generate`` returns (decoder ids, opening with the decoder's start token). A
        causal LM returns, as transformers does, the input ids followed by the new ones: the caller's
        ``input_ids`` *left-aligned* (padding first, as the model ran them; unchanged if the batch was
        left-padded), then the generated ids; ``out[:, input_ids.shape[1]:]`` are the new tokens
        either way. Rows may be padded on either side, and give the ids they give alone.

        Args:
            input_ids: ``(B, T)`` token ids, as the tokenizer gives them (with BOS where it adds one).
            attention_mask: ``(B, T)``; default: no padding.
            prompt: The prompt to use (default: the active one), without changing the active one.
            prompt_names: One prompt name per row instead (they must share ``num_virtual_tokens``).
            **generate_kwargs: For the model's ``generate`` (``max_new_tokens``, ``num_beams``,
                ``return_dict_in_generate``, ``generation_config``...). A causal LM takes
                ``max_new_tokens``/``min_new_tokens``, not ``max_length``/``min_length`` (whose count
                would include virtual tokens); ``repetition_penalty`` and ``no_repeat_ngram_size`` see
                only the new tokens there (transformers warns).

        Raises:
            ValueError: a model that does not generate; ``input_ids`` missing or not ``(B, T)``;
                ``prompt`` with ``prompt_names``; arguments the wrapper builds itself
                (:data:`REFUSED_GENERATE_ARGUMENTS`); ``max_length``/``min_length`` on a causal LM.

        Returns:
            The generated ids, ``(B, T')`` (or transformers' output object with ``return_dict_in_generate``).

        Examples:
            >>> from transformers import GPT2Config, GPT2LMHeadModel
            >>> lm = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=100, pad_token_id=0))
            >>> lm_wrapper = SoftPromptWrapper(lm, SoftPromptConfig(num_virtual_tokens=4, placement="prepend"))
            >>> ids = lm_wrapper.generate(torch.tensor([[5, 6, 7]]), max_new_tokens=3, do_sample=False)
            >>> ids.shape  # the 3 input ids, then 3 new ones
            torch.Size([1, 6])
        """
        kind = self._support.generation
        name = type(self.model).__name__
        if kind is None:
            raise ValueError(
                f"{name} has no language-model head: it does not generate (load *ForCausalLM, T5...)"
            )
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
            raise ValueError(f"generate() needs input_ids of shape (batch, seq_len), got {input_ids!r:.80}")
        refused = sorted(set(generate_kwargs) & set(REFUSED_GENERATE_ARGUMENTS))
        if refused:
            raise ValueError(f"generate() builds {refused} from the prompted input_ids itself: drop them")
        if kind == "causal" and {"max_length", "min_length"} & set(generate_kwargs):
            raise ValueError(
                "a causal LM generating from the prompted embeddings counts max_length/min_length from the first "
                "new token, not from the input: pass max_new_tokens / min_new_tokens instead"
            )
        if prompt is not None and prompt_names is not None:
            raise ValueError("pass prompt= (one prompt) or prompt_names= (one per row), not both")
        batch = input_ids.shape[0]
        names = prompt_names if prompt_names is not None else None if prompt is None else [prompt] * batch
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        inputs, _ = self._prompted_inputs(  # type: ignore[attr-defined]
            input_ids, attention_mask, None, None, None, None, names, {}
        )
        model_inputs = {"inputs_embeds": inputs["inputs_embeds"], "attention_mask": inputs["attention_mask"]}
        if kind == "causal":  # left-aligned rows: each text's positions, padding first
            model_inputs["position_ids"] = inputs["position_ids"]
        with backbone.attention_kernels(input_ids.device):
            out = self.model.generate(**model_inputs, **generate_kwargs)
        return out if kind == "seq2seq" else _with_inputs(out, input_ids, attention_mask)


def _refuse_deep(deep: bool, model_class: str) -> None:
    if deep:
        raise ValueError(
            f"deep prompts on {model_class} (a language model) are not supported: generation runs each new token "
            "alone against a key/value cache, where the layer hooks of a deep prompt would not find the virtual "
            "positions; use a shallow prompt (deep=False)"
        )


def _with_inputs(out: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
    """A causal LM's new tokens ``(B * k, G)`` after the caller's ``input_ids`` left-aligned: ``(B * k, T + G)``."""
    # (B, T): padding first, then the real tokens, each group in its own order
    order = torch.sort(attention_mask.long(), dim=1, stable=True).indices
    left = input_ids.gather(1, order)  # (B, T)
    sequences = out if isinstance(out, torch.Tensor) else out.sequences  # (B * k, G): only the new tokens
    left = left.repeat_interleave(sequences.shape[0] // left.shape[0], dim=0).to(sequences.device)
    joined = torch.cat([left, sequences], dim=1)  # (B * k, T + G)
    if isinstance(out, torch.Tensor):
        return joined
    out.sequences = joined
    return out
