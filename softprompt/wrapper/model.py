"""`SoftPromptWrapper`: prompt tuning for any Hugging Face encoder, with hot-swappable named prompts.

The wrapped model is frozen. Each named prompt (a :class:`PromptSlot`) owns its prompt vectors, its
own copy of the task head and its task; a forward splices the prompt into the batch
(:mod:`softprompt.models.layout`) and runs the model's own forward with the slot's head
(:mod:`softprompt.models.heads`), so one backbone serves many tasks, even within one batch. A deep prompt
(``SoftPromptConfig(deep=True)``) adds vectors at every layer's input through :mod:`softprompt.models.deep`.
Language models (T5/BART, causal LMs) also generate: :mod:`softprompt.wrapper.generation`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from softprompt.core.config import Overflow, Placement, PromptInit, SoftPromptConfig
from softprompt.files.prompt_file import read_prompt_file
from softprompt.inference.calibration import calibrate
from softprompt.models import backbone, layout, precision
from softprompt.models import support as model_support
from softprompt.models.bf16_cpu import bf16_cpu_kernels, fp32_attention_wanted
from softprompt.models.deep import DeepPrompt, initial_deep_prompt
from softprompt.models.init import initial_prompt
from softprompt.models.onednn import onednn_default, packed_linears
from softprompt.models.prompt_registry import PromptRegistry
from softprompt.models.routing import run_slots
from softprompt.models.slot import PromptSlot, slot_from_file
from softprompt.models.spans import answer_positions
from softprompt.models.transfer import transferred_prompt
from softprompt.wrapper.export import ExportMixin
from softprompt.wrapper.generation import PromptGenerationMixin
from softprompt.wrapper.predict import predict_with_wrapper
from softprompt.wrapper.pretrained import PretrainedMixin

__all__ = ["SoftPromptWrapper"]

DEFAULT_NAME = "default"


class SoftPromptWrapper(ExportMixin, PromptGenerationMixin, PretrainedMixin, PromptRegistry):
    """Wrap a Hugging Face encoder, decoder-only or encoder-decoder model for prompt tuning.

    Works through ``get_input_embeddings()`` and ``forward(inputs_embeds=...)`` only, so any encoder
    with a task head (sequence or token classification) or none (``AutoModel``) can be wrapped, and the
    decoder-only and encoder-decoder families of :mod:`softprompt.models.support` (language models too:
    :meth:`generate`); other models are refused here. The
    task (classification, multi-label, regression) is the model's: ``config.problem_type`` and
    ``num_labels``, as ``transformers`` reads them.

    Args:
        model: A ``transformers`` ``PreTrainedModel``. All its parameters are frozen.
        config: The prompt's :class:`SoftPromptConfig` (defaults to ``SoftPromptConfig()``).
        tokenizer: The model's tokenizer; needed for ``init="text"``/``"labels"``, for
            ``placement="after_cls"`` on models whose config has no ``[CLS]``/``<s>`` id, and for
            :meth:`tokenize` and :meth:`predict`.
        name: Name of the first prompt slot.

    Attributes:
        trim_last_layer: Where the head reads only position 0 (BERT-family sequence classification)
            and that is exact, the last layer runs for that position alone (:mod:`softprompt.models.first_token`).
        onednn_linear: On a CPU, the frozen fp32 linear layers run as prepacked oneDNN GEMMs
            (:mod:`softprompt.models.onednn`); on by default only on CPU kinds where that was measured
            faster (AMD CPUs with AVX-512; :func:`softprompt.models.onednn.onednn_default`). Both change
            float rounding only (logits within 1e-5); with both ``False`` the arithmetic is the bare model's,
            bit for bit.

    Raises:
        TypeError: ``model`` is not an ``nn.Module`` with input embeddings, or ``config`` is not a
            :class:`SoftPromptConfig`.
        ValueError: the config cannot be honoured, or the model is not supported (the message says why).

    Examples:
        >>> from transformers import AutoModelForSequenceClassification, AutoTokenizer
        >>> from softprompt import SoftPromptConfig, SoftPromptWrapper
        >>> model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
        >>> tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased")
        >>> wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=4), tokenizer=tokenizer)
        >>> out = wrapper(**tokenizer(["great product"], return_tensors="pt"))
        >>> out.logits.shape
        torch.Size([1, 2])
        >>> wrapper.save_prompt("sentiment.safetensors")
        PosixPath('sentiment.safetensors')
    """

    # Trainer must not pass num_items_in_batch through to the wrapped model
    accepts_loss_kwargs = False

    def __init__(
        self,
        model: nn.Module,
        config: SoftPromptConfig | None = None,
        *,
        tokenizer: Any | None = None,
        name: str = DEFAULT_NAME,
        _slot: PromptSlot | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module) or not hasattr(model, "get_input_embeddings"):
            raise TypeError(f"SoftPromptWrapper needs a transformers model, got {type(model).__name__}")
        if model.get_input_embeddings() is None:
            raise TypeError(
                f"{type(model).__name__} has no input embeddings (get_input_embeddings() is None)"
            )
        if config is not None and not isinstance(config, SoftPromptConfig):
            raise TypeError(f"config must be a SoftPromptConfig, got {type(config).__name__}")
        self._support = model_support.check_supported(model)  # refuses what it would run wrongly
        self.model = model.requires_grad_(False)
        self.tokenizer = tokenizer
        self.prompts = nn.ModuleDict()
        self._special_ids = backbone.first_special_ids(model, tokenizer)
        self._max_positions = backbone.max_positions(model)
        self._layer_stack = None  # found on the first deep prompt
        self._deep_hooks = None  # registered while a deep prompt is loaded
        self._fp32_outputs = None  # hook casting a low-precision backbone's outputs up for fp32 heads
        self.active_prompt = name
        self.trim_last_layer = True  # see Attributes
        self.onednn_linear = onednn_default()  # on where measured faster (models.onednn.MEASURED_FASTER)
        self.add_slot(name, _slot if _slot is not None else self._new_slot(config or SoftPromptConfig()))

    def _new_slot(self, config: SoftPromptConfig) -> PromptSlot:
        layout.check_room(self._max_positions, config.num_virtual_tokens)  # before allocating (N, E)
        task, id2label = self._task_and_labels(config)  # the head's; text-to-label on a language model
        weight = self.model.get_input_embeddings().weight  # (V, E)
        source = None
        if config.init is PromptInit.PROMPT:  # trained files' vectors (and head, where it fits), averaged
            source = transferred_prompt(config, self.model, task=task, id2label=id2label)
            prompt = source.prompt
        else:
            prompt = initial_prompt(
                config,
                weight,
                tokenizer=self.tokenizer,
                id2label=id2label or getattr(self.model.config, "id2label", None),
                special_ids=self._special_ids | backbone.config_special_ids(self.model),
            )
        deep = None
        if config.deep:
            vectors = source.deep if source is not None and source.deep is not None else None
            if vectors is None:
                vectors = initial_deep_prompt(config, self._stack())  # (L - 1, N, H)
            deep = DeepPrompt(
                vectors.to(weight.device), reparam_hidden=config.deep_reparam_hidden, seed=config.seed,
                residual_hidden=config.residual_hidden,
            )  # fmt: skip
        prompt = prompt.to(weight.device)
        return PromptSlot(
            config, prompt, self.model, task=task, id2label=id2label, deep=deep, residual=True,
            head=None if source is None else source.head,
        )  # fmt: skip

    @classmethod
    def from_prompt(
        cls,
        model: nn.Module,
        path: str | os.PathLike[str],
        *,
        tokenizer: Any | None = None,
        name: str = DEFAULT_NAME,
        strict_base_model: bool = False,
    ) -> SoftPromptWrapper:
        """Wrap ``model`` with the prompt (head and task) saved in ``path``, validated against the model first.

        Args:
            model: The base model the prompt was trained on (its task head's shape must match the file's).
            path: A prompt ``.safetensors`` file.
            tokenizer: The model's tokenizer (for :meth:`predict`, :meth:`tokenize` and ``after_cls`` placement).
            name: The slot's name.
            strict_base_model: Raise instead of warn when the file was trained on another base model.

        Returns:
            A wrapper whose active prompt is the file's.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is unreadable or does not fit ``model`` (see :meth:`load_prompt`).

        Examples:
            >>> path = wrapper.save_prompt("sentiment.safetensors")
            >>> again = SoftPromptWrapper.from_prompt(model, path, tokenizer=tokenizer)
            >>> torch.equal(again.slot().prompt, wrapper.slot().prompt)
            True
        """
        pf = read_prompt_file(path)
        slot = slot_from_file(pf, model, strict_base_model=strict_base_model)
        return cls(model, pf.config, tokenizer=tokenizer, name=name, _slot=slot)

    # ---------------------------------------------------------------- what HF tooling asks of a model

    @property
    def config(self) -> Any:
        """The active prompt's view of the model's config: its labels and ``problem_type`` (what
        ``Trainer`` and ``pipeline`` read). The wrapped model's own config is never changed."""
        return self.slot(None).view.config

    @property
    def device(self) -> torch.device:
        """Where the backbone's input embeddings live."""
        return self.model.get_input_embeddings().weight.device

    @property
    def dtype(self) -> torch.dtype:
        """The frozen backbone's dtype (prompts and heads are fp32 master weights whatever it is)."""
        return self.backbone_dtype

    # ---------------------------------------------------------------- precision

    def cast_backbone(self, dtype: torch.dtype) -> SoftPromptWrapper:
        """Hold the frozen backbone in ``dtype`` (e.g. ``torch.bfloat16``); prompts and heads stay fp32.

        The backbone never changes in prompt tuning, so keeping it in bf16 outright is cheaper than
        autocasting it every step. Heads run in fp32 on the backbone's output cast up.

        Args:
            dtype: A floating dtype (``torch.bfloat16``, ``torch.float16`` on a GPU, ``torch.float32``).

        Returns:
            The wrapper itself.

        Examples:
            >>> wrapper.cast_backbone(torch.bfloat16).backbone_dtype
            torch.bfloat16
            >>> wrapper.slot().prompt.dtype
            torch.float32
        """
        self._fp32_outputs = precision.cast_backbone(self.model, dtype, self._fp32_outputs)
        return self

    def quantize_backbone(self) -> SoftPromptWrapper:
        """Run the frozen backbone's linear layers in int8 on the CPU (inference only).

        See :func:`softprompt.models.quantize.quantize_linear_int8`. Logits move slightly: measure the accuracy.

        Returns:
            The wrapper itself.

        Examples:
            >>> wrapper.quantize_backbone().backbone_quantized
            True
        """
        precision.quantize_backbone(self.model)
        return self

    @property
    def backbone_quantized(self) -> bool:
        """Whether :meth:`quantize_backbone` turned the backbone's linear layers into int8 ones."""
        return precision.is_quantized(self.model.base_model)

    @property
    def backbone_dtype(self) -> torch.dtype:
        """The frozen backbone's dtype (that of its input embeddings).

        Examples:
            >>> wrapper.backbone_dtype
            torch.float32
        """
        return self.model.get_input_embeddings().weight.dtype

    def train(self, mode: bool = True) -> SoftPromptWrapper:
        """Training mode for the prompts; the frozen backbone and the heads' dropout stay in eval mode.

        Features are deterministic unless the active prompt's config has ``backbone_dropout=True``.

        Args:
            mode: ``True`` to train, ``False`` for evaluation (as ``nn.Module.train``).

        Returns:
            The wrapper itself.

        Examples:
            >>> wrapper.train().training, wrapper.model.training
            (True, False)
        """
        super().train(mode)
        if mode and not self.prompt_config.backbone_dropout:
            self.model.eval()
            for slot in self.prompts.values():
                slot.heads.eval()
        return self

    # ---------------------------------------------------------------- inference

    def predict(self, texts: Sequence[Any], *, prompt: str | None = None, **kwargs: Any) -> list[Any]:
        """Predict with the active prompt (or ``prompt``, or an ensemble of ``prompts=[...]``).

        Texts are strings, or ``(text, text_pair)`` tuples for pair tasks. What comes back
        depends on the prompt's task: :class:`~softprompt.Prediction` (class and confidence),
        :class:`~softprompt.MultiLabelPrediction` or :class:`~softprompt.RegressionPrediction`,
        :class:`~softprompt.Entity` lists for token classification, :class:`~softprompt.Answer` for
        question answering.

        Prediction runs in eval mode and puts the wrapper's mode back afterwards; a wrapper that serves
        requests is best put in ``eval()`` once, so that no call pays for switching every module's mode.

        Args:
            texts: The inputs, in order.
            prompt: The prompt to use (default: the active one), without changing the active one.
            **kwargs: As for :func:`softprompt.predict_with_wrapper` (``batch_size``, ``max_length``, ``bf16``,
                ``prompts`` for an ensemble...).

        Returns:
            One prediction per input, in order.

        Examples:
            >>> wrapper.predict(["An absolutely fantastic performance."])
            [Prediction(label=..., label_name=..., confidence=...)]
        """
        return predict_with_wrapper(self, texts, prompt=prompt, **kwargs)

    def calibrate(self, texts: Sequence[Any], labels: Sequence[int] | torch.Tensor, **kwargs: Any) -> float:
        """Fit the active prompt's softmax temperature on validation data; saved with the prompt.

        See :func:`softprompt.calibrate` (the same function calibrates a fine-tuned model).

        Args:
            texts: Validation texts (not training data, where the model is overconfident).
            labels: Their class ids.
            **kwargs: As for :func:`softprompt.calibrate` (``batch_size``, ``max_length``, ``bf16``).

        Returns:
            The temperature, also set on the active prompt.

        Examples:
            >>> t = wrapper.calibrate(["a great product", "a dull product", "great", "dull"], [1, 0, 1, 0])
            >>> t > 0
            True
        """
        return calibrate(self, self.tokenizer, texts, labels, **kwargs)

    # ---------------------------------------------------------------- tokenization

    def max_input_length(self, max_length: int | None = None, name: str | None = None) -> int:
        """Longest tokenized input that still fits with the virtual tokens of prompt ``name`` (default: active).

        Args:
            max_length: A limit of your own; the model's position limit applies too.
            name: The prompt (default: the active one).

        Returns:
            The longest input, in tokens, without the virtual ones.

        Raises:
            ValueError: the model has no position limit and ``max_length`` is ``None``, or no text fits.

        Examples:
            >>> wrapper.max_input_length(128)  # 128 positions minus 4 virtual tokens
            124
        """
        limit = self._max_positions
        if max_length is not None:
            limit = max_length if limit is None else min(limit, max_length)
        if limit is None:
            raise ValueError("the model has no position limit: pass max_length=...")
        n = self.slot(name).config.num_virtual_tokens
        room = limit - n
        if room < 2:
            raise ValueError(
                f"max length {limit} leaves no room for text after {n} virtual tokens; use fewer virtual tokens "
                f"(at most {limit - 2}){'' if max_length is None or max_length >= limit else ' or a larger max length'}"
            )
        return room

    def tokenize(
        self, texts: str | Sequence[str], text_pair: Sequence[str] | None = None, max_length: int | None = None,
        **kwargs: Any,
    ) -> Any:  # fmt: skip
        """Tokenize (pairs too) with ``max_length`` already reduced by the number of virtual tokens.

        Args:
            texts: One text or a list of texts.
            text_pair: The second texts of a pair task.
            max_length: The limit of prompt and text together (default: the model's positions).
            **kwargs: For the tokenizer (default: ``padding=True``, ``return_tensors="pt"``).

        Returns:
            The tokenizer's ``BatchEncoding``, truncated so the virtual tokens fit.

        Raises:
            ValueError: no tokenizer, or no room for text (see :meth:`max_input_length`).

        Examples:
            >>> batch = wrapper.tokenize(["great product", "dull"])
            >>> wrapper(**batch).logits.shape
            torch.Size([2, 2])
        """
        if self.tokenizer is None:
            raise ValueError("tokenize() needs a tokenizer: pass tokenizer=... to SoftPromptWrapper")
        kwargs.setdefault("padding", True)
        kwargs.setdefault("return_tensors", "pt")
        room = self.max_input_length(max_length)
        return self.tokenizer(texts, text_pair, truncation=True, max_length=room, **kwargs)

    # ---------------------------------------------------------------- forward

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        prompt_names: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run the model with the prompt spliced in.

        Args:
            input_ids: ``(B, T)`` token ids (or give ``inputs_embeds`` ``(B, T, E)``).
            attention_mask: as for the model, ``(B, T)``.
            token_type_ids: as for the model, ``(B, T)``.
            position_ids: as for the model, ``(B, T)``.
            inputs_embeds: ``(B, T, E)`` embeddings instead of ``input_ids``.
            labels: ``(B,)`` class ids or values, ``(B, C)`` 0/1 floats (multi-label), ``(B, T)`` token
                labels (virtual positions get -100; a causal LM's: the next-token targets, -100 where no
                loss), or a seq2seq LM's ``(B, L)`` target ids (the decoder's, untouched).
            prompt_names: One prompt name per example, to mix tasks in a batch; default: the active prompt.
            **kwargs: passed to the model (``output_hidden_states``, ...).

        Returns:
            The model's output. Token-level ``logits``, ``last_hidden_state`` and question answering's
            ``start_logits``/``end_logits`` (and a seq2seq LM's ``encoder_last_hidden_state``) have the virtual
            positions removed, so they line up with ``input_ids``; ``hidden_states`` and ``attentions`` (if
            asked for) keep them. A seq2seq LM's ``logits`` are the decoder's, one per target token.

        Raises:
            ValueError: inputs the prompt cannot be spliced into (the message says why).

        Examples:
            >>> batch = tokenizer(["a great product"], return_tensors="pt")
            >>> out = wrapper(**batch, labels=torch.tensor([1]))
            >>> out.logits.shape, out.loss.requires_grad
            (torch.Size([1, 2]), True)
        """
        seqs = (input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds)
        inputs, where = self._prompted_inputs(*seqs, labels, prompt_names, kwargs)
        kwargs["return_dict"] = True
        # no per-length cuDNN plans; frozen fp32 CPU linears as prepacked oneDNN GEMMs; a bf16 CPU backbone's
        # attention trained in fp32 where its bf16 backward was measured slower
        device = inputs["inputs_embeds"].device
        with (
            backbone.attention_kernels(device),
            packed_linears(self.onednn_linear),
            bf16_cpu_kernels(fp32_attention_wanted(device, self.backbone_dtype)),
        ):
            outputs = run_slots(
                where.slots, inputs, kwargs, self._deep_hooks, trim=self.trim_last_layer,
                at=where.starts, n=where.n, total=where.total,
            )  # fmt: skip
        return layout.outputs_to_caller(outputs, where)  # per-position outputs in the caller's columns

    def _prompted_inputs(
        self, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None, token_type_ids: torch.Tensor | None,
        position_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None, labels: torch.Tensor | None,
        prompt_names: Sequence[str] | None, kwargs: dict[str, Any],
    ) -> tuple[dict[str, torch.Tensor], layout.SplicedBatch]:  # fmt: skip
        """The model's inputs ``(B, T + N, ...)`` with each row's prompt spliced in, and where it went."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            if input_ids.dim() != 2:
                raise ValueError(f"input_ids must be (batch, seq_len), got shape {tuple(input_ids.shape)}")
            inputs_embeds = self.model.get_input_embeddings()(input_ids)  # (B, T, E)
        batch, seq_len = inputs_embeds.shape[:2]
        slots = self.batch_slots(prompt_names, batch)
        config = slots[0][1].config
        n = config.num_virtual_tokens
        after_cls = config.placement is Placement.AFTER_CLS
        if attention_mask is None:
            attention_mask = torch.ones(batch, seq_len, dtype=torch.long, device=inputs_embeds.device)
        rows = self._rows(attention_mask, n)  # how this architecture's rows run
        token_level = rows.token_labels(labels, (batch, seq_len))  # else one label per row, or target text
        seqs = {
            "inputs_embeds": inputs_embeds,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
            "position_ids": position_ids,
            "labels": labels if token_level else None,
        }
        seqs, input_ids = rows.arrange(seqs, input_ids, after_cls)  # decoders: real tokens first
        at = layout.insert_at(input_ids, self._special_ids, after_cls)
        seqs = layout.fit_length(seqs, seq_len, n, self._max_positions, config.overflow is Overflow.TRUNCATE)
        inputs = layout.splice(seqs, self._stack_prompts(slots, batch), at)  # (B, T + N, ...)
        inputs.update(answer_positions(kwargs, at=at, n=n, length=seq_len, fitted=seqs))  # QA labels, moved
        inputs = rows.model_inputs(inputs, kwargs)  # decoders: left-aligned, with position_ids
        if labels is not None and not token_level:
            inputs["labels"] = labels
        return inputs, layout.SplicedBatch(rows, slots, at, n, inputs["inputs_embeds"].shape[1])
