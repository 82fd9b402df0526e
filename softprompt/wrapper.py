"""`SoftPromptWrapper`: prompt tuning for any Hugging Face encoder, with hot-swappable named prompts.

The wrapped model is frozen. Each named prompt (a :class:`PromptSlot`) owns its prompt vectors and
its own copy of the task head, which is substituted into the model per forward pass, so one
backbone serves many tasks, even within one batch. A deep prompt (``SoftPromptConfig(deep=True)``) adds
vectors at every layer's input through :mod:`softprompt.deep`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from softprompt import backbone, layout
from softprompt.config import Overflow, Placement, SoftPromptConfig
from softprompt.deep import (
    DeepPrompt,
    DeepPromptHooks,
    LayerStack,
    find_layer_stack,
    initial_deep_prompt,
)
from softprompt.heads import forward_heads
from softprompt.inference import (
    Prediction,
    ensemble_probabilities,
    fit_temperature,
    predict,
    predict_logits,
    to_predictions,
)
from softprompt.init import initial_prompt
from softprompt.prompt_file import PromptFile, read_prompt_file
from softprompt.quantize import is_quantized, quantize_linear_int8
from softprompt.slot import PromptSlot, param_key, slot_from_file

__all__ = ["SoftPromptWrapper"]

logger = logging.getLogger(__name__)

DEFAULT_NAME = "default"


class SoftPromptWrapper(nn.Module):
    """Wrap a Hugging Face encoder for prompt tuning.

    Works through ``get_input_embeddings()`` and ``forward(inputs_embeds=...)`` only, so any encoder
    with a task head (sequence or token classification) or none (``AutoModel``) can be wrapped.

    Args:
        model: A ``transformers`` ``PreTrainedModel``. All its parameters are frozen.
        config: The prompt's :class:`SoftPromptConfig` (defaults to ``SoftPromptConfig()``).
        tokenizer: The model's tokenizer; needed for ``init="text"``/``"labels"``, for
            ``placement="after_cls"`` on models whose config has no [CLS]/<s> id, and for
            :meth:`tokenize`.
        name: Name of the first prompt slot.

    Raises:
        TypeError: ``model`` is not an ``nn.Module`` with input embeddings.
        ValueError: the config cannot be honoured for this model (the message says why).

    Example:
        >>> wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=20), tokenizer=tok)  # doctest: +SKIP
        >>> out = wrapper(**tok(["great film"], return_tensors="pt"))  # doctest: +SKIP
        >>> wrapper.save_prompt("imdb.safetensors")  # doctest: +SKIP
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
        self.model = model.requires_grad_(False)
        self.tokenizer = tokenizer
        self.prompts = nn.ModuleDict()
        self._head_names = backbone.head_parameter_names(model)
        self._special_ids = backbone.first_special_ids(model, tokenizer)
        self._max_positions = backbone.max_positions(model)
        self._accepts_token_types = backbone.forward_accepts(model, "token_type_ids")
        self._layer_stack: LayerStack | None = None  # found on the first deep prompt
        self._deep_hooks: DeepPromptHooks | None = None  # registered while a deep prompt is loaded
        self.active_prompt = name
        slot = _slot if _slot is not None else self._new_slot(config or SoftPromptConfig())
        self._add_slot(name, slot)

    # ---------------------------------------------------------------- construction and files

    def _new_slot(self, config: SoftPromptConfig) -> PromptSlot:
        weight = self.model.get_input_embeddings().weight  # (V, E)
        prompt = initial_prompt(
            config,
            weight,
            tokenizer=self.tokenizer,
            id2label=getattr(self.model.config, "id2label", None),
            special_ids=self._special_ids | _config_special_ids(self.model),
        )
        params = dict(self.model.named_parameters())
        head = {n: params[n] for n in self._head_names}
        deep = None
        if config.deep:
            vectors = initial_deep_prompt(config, self._stack())  # (L - 1, N, H)
            deep = DeepPrompt(vectors, reparam_hidden=config.deep_reparam_hidden, seed=config.seed)
        return PromptSlot(config, prompt.to(weight.device), head, id2label=self._model_id2label(), deep=deep)

    def _stack(self) -> LayerStack:
        if self._layer_stack is None:
            self._layer_stack = find_layer_stack(self.model)
        return self._layer_stack

    def _model_id2label(self) -> dict[int, str]:
        if not self._head_names:
            return {}
        return {int(k): str(v) for k, v in (getattr(self.model.config, "id2label", None) or {}).items()}

    def _add_slot(self, name: str, slot: PromptSlot) -> None:
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"prompt name must be a non-empty string without '.', got {name!r}")
        if slot.config.placement is Placement.AFTER_CLS and not self._special_ids:
            raise ValueError(
                f"placement='after_cls' needs the [CLS]/<s> token id, and {type(self.model).__name__}'s config has "
                "none: pass tokenizer=... to SoftPromptWrapper, or use SoftPromptConfig(placement='prepend')"
            )
        if slot.deep is not None:
            stack = self._stack()
            expected = (stack.num_layers - 1, slot.config.num_virtual_tokens, stack.hidden_size)
            if slot.deep.shape != expected:
                raise ValueError(
                    f"deep prompt {name!r} has vectors of shape {slot.deep.shape}, but {type(self.model).__name__} "
                    f"needs {expected} (layers - 1, virtual tokens, hidden size)"
                )
        device = self.model.get_input_embeddings().weight.device
        self.prompts[name] = slot.to(device)
        self._sync_deep_hooks()

    def _sync_deep_hooks(self) -> None:
        """Hooks on the layers while some slot is deep, none otherwise (so nothing leaks onto the model)."""
        wanted = any(slot.deep is not None for slot in self.prompts.values())
        if wanted and self._deep_hooks is None:
            self._deep_hooks = DeepPromptHooks(self._stack())
        elif not wanted and self._deep_hooks is not None:
            self._deep_hooks.remove()
            self._deep_hooks = None

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
        """Wrap ``model`` with the prompt (and head) saved in ``path``.

        The file is fully validated against the model before anything is changed.

        Raises:
            FileNotFoundError, ValueError: see :meth:`load_prompt`.

        Example:
            >>> wrapper = SoftPromptWrapper.from_prompt(model, "imdb.safetensors", tokenizer=tok)  # doctest: +SKIP
        """
        pf = read_prompt_file(path)
        slot = slot_from_file(pf, model, strict_base_model=strict_base_model)
        return cls(model, pf.config, tokenizer=tokenizer, name=name, _slot=slot)

    def load_prompt(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        *,
        activate: bool = False,
        replace: bool = False,
        strict_base_model: bool = False,
    ) -> str:
        """Add the prompt in ``path`` as a named slot (with its own head); returns the name.

        Args:
            path: A prompt ``.safetensors`` file.
            name: Slot name; defaults to the file's stem.
            activate: Make it the active prompt.
            replace: Allow overwriting an existing slot of that name (otherwise an error, so a
                trained prompt is never lost by accident).
            strict_base_model: Raise instead of warn when the file was trained on another base model.

        Raises:
            FileNotFoundError: no such file.
            ValueError: unreadable file or metadata, missing tensors, NaN/inf values, embedding dim,
                num_labels or head shapes that differ from this model, or a name already taken.
        """
        name = Path(path).stem if name is None else name
        if name in self.prompts and not replace:
            raise ValueError(f"a prompt named {name!r} is loaded already; pass replace=True or another name")
        pf = read_prompt_file(path)
        self._add_slot(name, slot_from_file(pf, self.model, strict_base_model=strict_base_model))
        if activate:
            self.set_active_prompt(name)
        return name

    def reload_prompt(self, path: str | os.PathLike[str], name: str | None = None) -> None:
        """Overwrite a slot's prompt and head values in place from ``path`` (validated first).

        Parameter objects are kept, so an optimizer holding them stays valid (checkpoint resume,
        best-model restore). A deep prompt trained through an MLP (``deep_reparam_hidden``) gets
        the MLP's state back from the file's ``deep_reparam.*`` tensors.

        Raises:
            ValueError: the file's prompt shape, head, deep-ness or MLP differ from the slot's.
        """
        slot = self._slot(name)
        label = name or self.active_prompt
        pf = read_prompt_file(path)
        new = slot_from_file(pf, self.model, strict_base_model=False)
        if (
            pf.config.num_virtual_tokens != slot.config.num_virtual_tokens
            or sorted(new.head_names) != sorted(slot.head_names)
            or pf.config.deep != slot.config.deep
        ):
            raise ValueError(
                f"{path}: prompt shape, head or deep=... differ from slot {label!r}; use load_prompt"
            )
        reparam: dict[str, torch.Tensor] = {}
        if slot.deep is not None and slot.deep.reparam:
            reparam = slot.deep.state_dict()
            if sorted(pf.deep_reparam) != sorted(reparam) or any(
                pf.deep_reparam[k].shape != v.shape for k, v in reparam.items()
            ):
                raise ValueError(
                    f"{path}: slot {label!r} trains its deep prompt through an MLP, and the file does not hold that "
                    "MLP's state (only the folded vectors); load it with load_prompt(..., replace=True) instead"
                )
        with torch.no_grad():
            slot.prompt.copy_(new.prompt)
            for key, value in new.head_params().items():
                slot.head[param_key(key)].copy_(value)
            if reparam:
                for key, value in reparam.items():  # state_dict tensors share the parameters' storage
                    value.copy_(pf.deep_reparam[key])
            elif slot.deep is not None and new.deep is not None:
                slot.deep.vectors.copy_(new.deep.vectors)
        slot.temperature = new.temperature

    def save_prompt(self, path: str | os.PathLike[str], name: str | None = None) -> Path:
        """Write one prompt (default: the active one) and its head to a ``.safetensors`` file, atomically.

        Example:
            >>> wrapper.save_prompt("imdb.safetensors")  # doctest: +SKIP
        """
        return self.prompt_file(name).save(path)

    def prompt_file(self, name: str | None = None) -> PromptFile:
        """The in-memory :class:`PromptFile` of a slot (what :meth:`save_prompt` writes).

        A deep prompt's vectors are stored folded (plain ``(L - 1, N, H)``), so the file runs
        without the MLP they may be trained through; that MLP's state rides along for resuming.
        """
        slot = self._slot(name)
        deep = slot.deep
        return PromptFile(
            config=slot.config,
            prompt=slot.prompt.detach(),
            head={k: v.detach() for k, v in slot.head_params().items()},
            base_model=str(
                getattr(self.model.config, "_name_or_path", "") or getattr(self.model, "name_or_path", "")
            ),
            model_type=str(getattr(self.model.config, "model_type", "")),
            num_labels=backbone.num_labels(self.model),
            id2label=slot.id2label,
            temperature=slot.temperature,
            deep_prompts=None if deep is None else deep.folded(),
            deep_reparam={k: v.detach() for k, v in deep.state_dict().items()}
            if deep is not None and deep.reparam
            else {},
        )

    def fold_deep_reparam(self, name: str | None = None) -> None:
        """Replace a deep prompt's MLP by the plain vectors it gives (done training through the MLP).

        Saved files get smaller (no ``deep_reparam.*`` state) and further training updates the
        vectors directly. The slot's deep parameters are new objects: build a new optimizer.

        Raises:
            ValueError: the slot has no reparameterised deep prompt.
        """
        slot = self._slot(name)
        if slot.deep is None or not slot.deep.reparam:
            raise ValueError(
                f"prompt {name or self.active_prompt!r} has no deep prompt trained through an MLP to fold"
            )
        slot.deep = DeepPrompt(slot.deep.folded()).to(slot.prompt.device)

    # ---------------------------------------------------------------- slots

    @property
    def config(self) -> Any:
        """The wrapped model's ``transformers`` config (what ``Trainer`` and HF tooling expect)."""
        return self.model.config

    @property
    def prompt_config(self) -> SoftPromptConfig:
        """:class:`SoftPromptConfig` of the active prompt."""
        return self._slot(None).config

    @property
    def prompt_names(self) -> list[str]:
        return list(self.prompts)

    def set_active_prompt(self, name: str) -> None:
        """Make ``name`` the prompt used when a forward gets no ``prompt_names``."""
        self._slot(name)
        self.active_prompt = name

    def remove_prompt(self, name: str) -> None:
        """Drop a slot (not the active one)."""
        if name == self.active_prompt:
            raise ValueError(
                f"cannot remove the active prompt {name!r}; set_active_prompt(...) another one first"
            )
        self._slot(name)
        del self.prompts[name]
        self._sync_deep_hooks()

    def _slot(self, name: str | None) -> PromptSlot:
        name = self.active_prompt if name is None else name
        if name not in self.prompts:
            raise KeyError(f"no prompt named {name!r}; loaded prompts: {list(self.prompts)}")
        return self.prompts[name]

    def num_trainable_parameters(self, name: str | None = None) -> int:
        """Trainable parameters of one slot: prompt, deep vectors (or their MLP), head if ``train_head``."""
        return sum(p.numel() for p in self._slot(name).parameters() if p.requires_grad)

    def cast_backbone(self, dtype: torch.dtype) -> SoftPromptWrapper:
        """Hold the frozen backbone in ``dtype`` (e.g. ``torch.bfloat16``); prompts and heads stay fp32.

        The backbone never changes in prompt tuning, so keeping it in bf16 outright is cheaper than
        autocasting it every step. Heads run in fp32 on the backbone's output cast up.

        Example:
            >>> wrapper.cast_backbone(torch.bfloat16)  # doctest: +SKIP
        """
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"cast_backbone needs a floating torch.dtype, got {dtype!r}")
        if self.backbone_quantized:
            raise ValueError("this backbone was quantized to int8; load a fresh model to cast it")
        device, _ = backbone.model_device_dtype(self.model)
        if dtype == torch.bfloat16 and device.type == "cpu" and not backbone.cpu_has_fast_bf16():
            warnings.warn(
                "this CPU has no native bf16 (no AVX-512 BF16/AMX): bf16 matmuls are emulated and much slower "
                "than fp32 here; leave bf16 off on this machine",
                UserWarning,
                stacklevel=2,
            )
        self.model.to(dtype)
        return self

    def quantize_backbone(self) -> SoftPromptWrapper:
        """Run the frozen backbone's linear layers in int8 on the CPU: faster, slightly approximate.

        Inference only: weights are quantized per output channel once, activations per batch
        (PyTorch dynamic quantization; see :mod:`softprompt.quantize`). Prompts, heads,
        embeddings, LayerNorms and attention stay fp32. Logits move slightly, so measure the
        accuracy you get (``softprompt eval --int8``). Irreversible: load a fresh model to train.

        Example:
            >>> wrapper.quantize_backbone().predict(["A superb film."])  # doctest: +SKIP
            [Prediction(label=1, label_name='pos', confidence=0.94)]
        """
        if not self.backbone_quantized:
            quantize_linear_int8(self.model.base_model)
        return self

    @property
    def backbone_quantized(self) -> bool:
        """Whether :meth:`quantize_backbone` turned the backbone's linear layers into int8 ones."""
        return is_quantized(self.model.base_model)

    @property
    def backbone_dtype(self) -> torch.dtype:
        return self.model.get_input_embeddings().weight.dtype

    def train(self, mode: bool = True) -> SoftPromptWrapper:
        """Training mode for the prompts and heads; the frozen backbone stays in eval mode (no
        dropout) unless the active prompt's config has ``backbone_dropout=True``."""
        super().train(mode)
        if mode and not self.prompt_config.backbone_dropout:
            self.model.eval()
        return self

    # ---------------------------------------------------------------- inference

    def predict(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        max_length: int | None = None,
        bf16: bool = False,
        prompts: Sequence[str] | None = None,
        max_batch_tokens: int | str | None = "auto",
    ) -> list[Prediction]:
        """Label, label name and (calibrated) confidence per text, with the active prompt or an ensemble.

        Batched and sorted by length internally, returned in input order; texts too long are
        truncated. ``[]`` gives ``[]``; a non-string raises ``TypeError``.

        Args:
            texts: The texts.
            batch_size: Most texts per forward pass (an ensemble runs ``batch_size * len(prompts)`` rows).
            max_length: Cap on tokens per text.
            bf16: Hold the frozen backbone in bf16.
            prompts: Names of prompts to ensemble (Lester et al. 2021): every text runs once per
                prompt in one mixed-prompt batch, and the softmax probabilities (each prompt with
                its own temperature) are averaged. Default: the active prompt alone.
            max_batch_tokens: Most padded tokens per forward pass; ``"auto"`` keeps CPU batches
                cache-sized (see :func:`softprompt.predict_logits`).

        Raises:
            KeyError: an unknown prompt name.
            ValueError: an empty or repeated ``prompts`` list, or prompts that cannot share a batch
                (different ``num_virtual_tokens`` or ``placement``) or disagree on ``id2label``.

        Example:
            >>> wrapper.predict(["This movie was absolutely fantastic! The acting was superb."])  # doctest: +SKIP
            [Prediction(label=1, label_name='pos', confidence=0.93)]
            >>> wrapper.predict(["A superb film."], prompts=["imdb-a", "imdb-b", "imdb-c"])  # doctest: +SKIP
            [Prediction(label=1, label_name='pos', confidence=0.95)]
        """
        self._need_tokenizer("predict()")
        if prompts is None:
            slot = self._slot(None)
            return predict(
                self, self.tokenizer, texts, batch_size=batch_size, max_length=max_length, bf16=bf16,
                temperature=slot.temperature, id2label=slot.id2label or None, max_batch_tokens=max_batch_tokens,
            )  # fmt: skip
        names = list(prompts) if not isinstance(prompts, str) else []
        if not names or len(set(names)) != len(names):
            raise ValueError(f"prompts must be a list of distinct prompt names, got {prompts!r}")
        slots = self._batch_slots(names, len(names))  # unknown names, and whether they can share a batch
        id2label = slots[0][1].id2label
        for other, slot in slots[1:]:
            if slot.id2label != id2label:
                raise ValueError(
                    f"prompts in an ensemble must share their labels: {names[0]!r} has id2label {id2label}, "
                    f"{other!r} has {slot.id2label}"
                )
        probs = ensemble_probabilities(
            self, self.tokenizer, texts, names, temperatures=[slot.temperature for _, slot in slots],
            batch_size=batch_size, max_length=max_length, bf16=bf16, max_batch_tokens=max_batch_tokens,
        )  # fmt: skip
        return to_predictions(probs, id2label or getattr(self.model.config, "id2label", None) or {})

    def calibrate(
        self,
        texts: Sequence[str],
        labels: Sequence[int] | torch.Tensor,
        *,
        batch_size: int = 32,
        bf16: bool = False,
    ) -> float:
        """Fit the active prompt's softmax temperature on validation data; saved with the prompt.

        Returns:
            The temperature (also stored in the slot and written by :meth:`save_prompt`).
        """
        self._need_tokenizer("calibrate()")
        labels = torch.as_tensor(labels)
        if labels.shape != (len(texts),):
            raise ValueError(
                f"calibrate() needs one label per text: {len(texts)} texts, labels of shape {tuple(labels.shape)}"
            )
        logits = predict_logits(self, self.tokenizer, texts, batch_size=batch_size, bf16=bf16)
        temperature = fit_temperature(logits, labels)
        self._slot(None).temperature = temperature
        return temperature

    def _need_tokenizer(self, what: str) -> None:
        if self.tokenizer is None:
            raise ValueError(f"{what} needs a tokenizer: pass tokenizer=... to SoftPromptWrapper")

    # ---------------------------------------------------------------- tokenization

    def max_input_length(self, max_length: int | None = None, name: str | None = None) -> int:
        """Longest tokenized input that still fits with the virtual tokens of prompt ``name`` (default: active)."""
        limit = self._max_positions
        if max_length is not None:
            limit = max_length if limit is None else min(limit, max_length)
        if limit is None:
            raise ValueError("the model has no position limit: pass max_length=...")
        n = self._slot(name).config.num_virtual_tokens
        room = limit - n
        if room < 2:
            raise ValueError(f"max length {limit} leaves no room for text after {n} virtual tokens")
        return room

    def tokenize(self, texts: str | Sequence[str], max_length: int | None = None, **kwargs: Any) -> Any:
        """Tokenize with ``max_length`` already reduced by the number of virtual tokens.

        Example:
            >>> batch = wrapper.tokenize(["great film", "dull"])  # doctest: +SKIP
            >>> wrapper(**batch).logits.shape  # doctest: +SKIP
            torch.Size([2, 2])
        """
        self._need_tokenizer("tokenize()")
        kwargs.setdefault("padding", True)
        kwargs.setdefault("return_tensors", "pt")
        return self.tokenizer(texts, truncation=True, max_length=self.max_input_length(max_length), **kwargs)

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
            attention_mask, token_type_ids, position_ids: as for the model, ``(B, T)``.
            labels: ``(B,)`` class ids, or ``(B, T)`` token labels (virtual positions get -100).
            prompt_names: One prompt name per example, to mix tasks in a batch; default: the active prompt.
            **kwargs: passed to the model (``output_hidden_states``, ...).

        Returns:
            The model's output. Token-level ``logits`` and ``last_hidden_state`` have the virtual
            positions removed, so they line up with ``input_ids``; ``hidden_states`` and
            ``attentions`` (if asked for) keep them (for a deep prompt, ``hidden_states`` show the
            virtual positions as each layer made them, before the next layer's vectors replace them).
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            if input_ids.dim() != 2:
                raise ValueError(f"input_ids must be (batch, seq_len), got shape {tuple(input_ids.shape)}")
            inputs_embeds = self.model.get_input_embeddings()(input_ids)  # (B, T, E)
        batch, seq_len = inputs_embeds.shape[:2]
        slots = self._batch_slots(prompt_names, batch)
        config = slots[0][1].config
        n = config.num_virtual_tokens
        at = self._insert_at(input_ids, config.placement)
        if attention_mask is None:
            attention_mask = torch.ones(batch, seq_len, dtype=torch.long, device=inputs_embeds.device)
        token_level = (
            labels is not None
            and labels.dim() == 2
            and not labels.is_floating_point()
            and labels.shape == (batch, seq_len)
        )

        seqs: dict[str, torch.Tensor | None] = {
            "inputs_embeds": inputs_embeds,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
            "position_ids": position_ids,
            "labels": labels if token_level else None,
        }
        seqs = self._fit_length(seqs, seq_len, n, config.overflow)

        prompt = self._stack_prompts(slots, batch)  # (B, N, E)
        embeds = seqs["inputs_embeds"]
        model_inputs: dict[str, Any] = {
            "inputs_embeds": layout.insert(embeds, prompt.to(embeds.dtype), at),  # (B, T + N, E)
            "attention_mask": layout.insert(
                seqs["attention_mask"], seqs["attention_mask"].new_ones(batch, n), at
            ),
        }
        if seqs["token_type_ids"] is not None:
            tt = seqs["token_type_ids"]
            neighbour = tt[:, at - 1 : at] if at > 0 else tt[:, :1]  # (B, 1) segment of the neighbour
            model_inputs["token_type_ids"] = layout.insert(tt, neighbour.expand(batch, n), at)
        if seqs["position_ids"] is not None:
            model_inputs["position_ids"] = layout.insert_position_ids(seqs["position_ids"], n, at)
        if labels is not None:
            model_inputs["labels"] = (
                layout.insert(seqs["labels"], seqs["labels"].new_full((batch, n), layout.IGNORE_INDEX), at)
                if token_level
                else labels
            )
        kwargs["return_dict"] = True
        total = model_inputs["inputs_embeds"].shape[1]
        attention = backbone.attention_kernels(inputs_embeds.device)  # no per-length cuDNN plans
        with attention, self._deep_context(slots, at=at, n=n, total=total):
            outputs = self._run(model_inputs, slots, kwargs)
        for key in ("logits", "last_hidden_state"):
            value = outputs.get(key) if hasattr(outputs, "get") else None
            if isinstance(value, torch.Tensor) and value.dim() == 3 and value.shape[1] == total:
                outputs[key] = layout.remove_virtual(value, n, at)
        return outputs

    def _batch_slots(self, prompt_names: Sequence[str] | None, batch: int) -> list[tuple[str, PromptSlot]]:
        """Per example, its (name, slot)."""
        if prompt_names is None:
            return [(self.active_prompt, self._slot(None))] * batch
        if isinstance(prompt_names, str) or len(prompt_names) != batch:
            raise ValueError(
                f"prompt_names must be a list with one name per example ({batch}), got {prompt_names!r}"
            )
        slots = [(name, self._slot(name)) for name in prompt_names]
        first = slots[0][1].config
        for name, slot in slots:
            if (slot.config.num_virtual_tokens, slot.config.placement) != (
                first.num_virtual_tokens,
                first.placement,
            ):
                raise ValueError(
                    f"prompts mixed in one batch need the same num_virtual_tokens and placement: {prompt_names[0]!r} has "
                    f"({first.num_virtual_tokens}, {first.placement.value}), {name!r} has "
                    f"({slot.config.num_virtual_tokens}, {slot.config.placement.value})"
                )
        return slots

    def _insert_at(self, input_ids: torch.Tensor | None, placement: Placement) -> int:
        if placement is Placement.PREPEND:
            return 0
        if input_ids is None:  # embeddings given: assume they start with [CLS], as a tokenizer makes them
            return 1
        starts = torch.isin(input_ids[:, 0], torch.tensor(sorted(self._special_ids), device=input_ids.device))
        if bool(starts.all()):
            return 1
        if not bool(starts.any()):
            return 0
        raise ValueError(
            "some inputs start with a [CLS]/<s> token and some do not; tokenize the whole batch the same way "
            "(or use placement='prepend')"
        )

    def _fit_length(
        self, seqs: dict[str, torch.Tensor | None], seq_len: int, n: int, overflow: Overflow
    ) -> dict[str, torch.Tensor | None]:
        """Check (or, with ``overflow='truncate'``, enforce) seq_len + N <= the model's max positions."""
        limit = self._max_positions
        if limit is None or seq_len + n <= limit:
            return seqs
        keep = limit - n
        if overflow is Overflow.ERROR or keep < 2:
            raise ValueError(
                f"input of {seq_len} tokens + {n} virtual tokens = {seq_len + n} exceeds the model's {limit} positions; "
                f"tokenize with max_length={keep} (wrapper.tokenize() does this), or use "
                "SoftPromptConfig(overflow='truncate') to cut inputs (keeping the final [SEP])"
            )
        lengths = seqs["attention_mask"].sum(1)  # (B,)
        index = layout.keep_rows_index(lengths, seq_len, keep)  # (B, keep)
        out: dict[str, torch.Tensor | None] = {}
        for key, value in seqs.items():
            if value is None:
                out[key] = None
                continue
            idx = index if value.dim() == 2 else index.unsqueeze(-1).expand(-1, -1, value.shape[-1])
            out[key] = value.gather(1, idx)
        return out

    def _stack_prompts(self, slots: list[tuple[str, PromptSlot]], batch: int) -> torch.Tensor:
        names = [name for name, _ in slots]
        if len(set(names)) == 1:
            return slots[0][1].prompt.unsqueeze(0).expand(batch, -1, -1)  # (B, N, E), no copy
        return torch.stack([slot.prompt for _, slot in slots])  # (B, N, E)

    def _deep_context(
        self, slots: list[tuple[str, PromptSlot]], *, at: int, n: int, total: int
    ) -> contextlib.AbstractContextManager[None]:
        """While open, each layer's input gets the batch's deep vectors (a no-op without deep prompts)."""
        index: dict[str, int] = {}  # distinct deep slots in the batch -> row of `vectors`
        for name, slot in slots:
            if slot.deep is not None and name not in index:
                index[name] = len(index)
        if not index:
            return contextlib.nullcontext()
        assert self._deep_hooks is not None  # registered by _add_slot with the first deep slot
        per_slot = [self.prompts[name].deep() for name in index]  # each (L - 1, N, H), MLP run once
        vectors = (
            per_slot[0].unsqueeze(0) if len(per_slot) == 1 else torch.stack(per_slot)
        )  # (S, L - 1, N, H)
        rows = keep = None
        if len(index) > 1 or len(index) != len({name for name, _ in slots}):  # several prompts in the batch
            device = vectors.device
            rows = torch.tensor([index.get(name, 0) for name, _ in slots], device=device)  # (B,)
            keep = torch.tensor([name in index for name, _ in slots], device=device).view(
                -1, 1, 1
            )  # (B, 1, 1)
        return self._deep_hooks.inject(vectors, rows, keep, at=at, n=n, batch=len(slots), total=total)

    def _run(
        self, inputs: dict[str, Any], slots: list[tuple[str, PromptSlot]], kwargs: dict[str, Any]
    ) -> Any:
        """One backbone pass for the whole batch, then each prompt's head on its rows."""
        if not self._head_names:  # bare encoder: the model is its own backbone
            return self.model(**inputs, **kwargs)
        groups: dict[str, list[int]] = {}
        for i, (name, _) in enumerate(slots):
            groups.setdefault(name, []).append(i)
        return forward_heads(
            self.model, inputs, kwargs, [(self._slot(n), rows) for n, rows in groups.items()]
        )


def _config_special_ids(model: nn.Module) -> set[int]:
    config = getattr(model, "config", None)
    ids = {
        getattr(config, a, None)
        for a in ("pad_token_id", "cls_token_id", "sep_token_id", "bos_token_id", "eos_token_id")
    }
    return {i for i in ids if isinstance(i, int)}
