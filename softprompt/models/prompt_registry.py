"""Named prompts on one backbone: load, reload in place, save, activate and remove prompt slots.

:class:`PromptRegistry` is the half of :class:`~softprompt.SoftPromptWrapper` that manages
slots and prompt files; the wrapper itself owns construction and the forward pass.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from softprompt.core.config import Placement, SoftPromptConfig
from softprompt.files.checks import base_fingerprint
from softprompt.files.prompt_file import PromptFile, read_prompt_file
from softprompt.models import backbone
from softprompt.models.deep import DeepPrompt, DeepPromptHooks, LayerStack, find_layer_stack
from softprompt.models.slot import PromptSlot, slot_from_file
from softprompt.models.usage import changing, holding

if TYPE_CHECKING:
    from softprompt.core.task import Task

__all__ = ["PromptRegistry"]


class PromptRegistry(nn.Module):
    """Slots (:class:`~softprompt.PromptSlot`) by name, the active one, and their files."""

    model: nn.Module
    prompts: nn.ModuleDict
    active_prompt: str
    _special_ids: set[int]
    _layer_stack: LayerStack | None
    _deep_hooks: DeepPromptHooks | None

    def _stack(self) -> LayerStack:
        if self._layer_stack is None:
            self._layer_stack = find_layer_stack(self.model)
        return self._layer_stack

    def add_slot(self, name: str, slot: PromptSlot) -> None:
        """Hold ``slot`` under ``name`` (replacing a slot of that name), on the model's device.

        Raises:
            ValueError: a bad name, ``after_cls`` without a [CLS] id, or deep vectors that do not fit the model.

        Examples:
            >>> wrapper.add_slot("imported", slot)  # doctest: +SKIP
        """
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"prompt name must be a non-empty string without '.', got {name!r}")
        if slot.config.placement is Placement.AFTER_CLS and not self._special_ids:
            raise ValueError(
                f"placement='after_cls' needs the [CLS]/<s> token id, and {type(self.model).__name__}'s config has "
                "none: pass tokenizer=... to SoftPromptWrapper, or use SoftPromptConfig(placement='prepend') (inputs "
                "that open with no such token, as T5's do, need 'prepend')"
            )
        if slot.deep is not None:
            stack = self._stack()
            expected = (stack.num_layers - 1, slot.config.num_virtual_tokens, stack.hidden_size)
            if slot.deep.shape != expected:
                raise ValueError(
                    f"deep prompt {name!r} has vectors of shape {slot.deep.shape}, but {type(self.model).__name__} "
                    f"needs {expected} (layers - 1, virtual tokens, hidden size)"
                )
        moved = slot.to(self.model.get_input_embeddings().weight.device)
        with changing(self, name):  # a running call keeps the slot it started with: replacing it waits for it
            self.prompts[name] = moved
        self._sync_deep_hooks()

    def _sync_deep_hooks(self) -> None:
        """Hooks on the layers while some slot is deep, none otherwise (so nothing leaks onto the model)."""
        wanted = any(slot.deep is not None for slot in self.prompts.values())
        if wanted and self._deep_hooks is None:
            self._deep_hooks = DeepPromptHooks(self._stack())
        elif not wanted and self._deep_hooks is not None:
            self._deep_hooks.remove()
            self._deep_hooks = None

    def slot(self, name: str | None = None) -> PromptSlot:
        """The :class:`~softprompt.PromptSlot` named ``name`` (default: the active one).

        Raises:
            KeyError: no prompt of that name.

        Examples:
            >>> wrapper.slot().config.num_virtual_tokens  # doctest: +SKIP
            20
        """
        name = self.active_prompt if name is None else name
        if name not in self.prompts:
            raise KeyError(f"no prompt named {name!r}; loaded prompts: {list(self.prompts)}")
        return self.prompts[name]

    def batch_slots(self, prompt_names: Sequence[str] | None, batch: int) -> list[tuple[str, PromptSlot]]:
        """Per example, its ``(name, slot)``; the slots must share their length and placement to share a batch.

        Raises:
            KeyError: an unknown name.
            ValueError: not one name per example, or prompts that cannot share a batch.
        """
        if prompt_names is None:
            return [(self.active_prompt, self.slot(None))] * batch
        if isinstance(prompt_names, str) or len(prompt_names) != batch:
            raise ValueError(
                f"prompt_names must be a list with one name per example ({batch}), got {prompt_names!r}"
            )
        slots = [(name, self.slot(name)) for name in prompt_names]
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

    def _stack_prompts(self, slots: list[tuple[str, PromptSlot]], batch: int) -> torch.Tensor:
        if len({name for name, _ in slots}) == 1:
            return slots[0][1].prompt.unsqueeze(0).expand(batch, -1, -1)  # (B, N, E), no copy
        return torch.stack([slot.prompt for _, slot in slots])  # (B, N, E)

    # ---------------------------------------------------------------- files

    def load_prompt(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        *,
        activate: bool = False,
        replace: bool = False,
        strict_base_model: bool = False,
    ) -> str:
        """Add the prompt in ``path`` as a named slot (with its own head and task); returns the name.

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
                num_labels, task or head shapes that differ from this model, or a name already taken.

        Examples:
            >>> wrapper.load_prompt("sick-relatedness.safetensors", activate=True)  # doctest: +SKIP
            'sick-relatedness'
        """
        name = Path(path).stem if name is None else name
        if name in self.prompts and not replace:
            raise ValueError(f"a prompt named {name!r} is loaded already; pass replace=True or another name")
        pf = read_prompt_file(path)
        self.add_slot(name, slot_from_file(pf, self.model, strict_base_model=strict_base_model))
        if activate:
            self.set_active_prompt(name)
        return name

    def reload_prompt(self, path: str | os.PathLike[str], name: str | None = None) -> None:
        """Overwrite a slot's prompt and head values in place from ``path`` (validated first).

        Parameter objects are kept, so an optimizer holding them stays valid (checkpoint resume,
        best-model restore). A deep prompt trained through an MLP (``deep_reparam_hidden``) gets
        the MLP's state back from the file's ``deep_reparam.*`` tensors.

        Raises:
            ValueError: the file's prompt shape, head, task, deep-ness or MLP differ from the slot's.
        """
        slot = self.slot(name)
        label = name or self.active_prompt
        pf = read_prompt_file(path)
        new = slot_from_file(pf, self.model, strict_base_model=False)
        if (
            pf.config.num_virtual_tokens != slot.config.num_virtual_tokens
            or sorted(new.head_names) != sorted(slot.head_names)
            or pf.config.deep != slot.config.deep
            or new.task != slot.task
        ):
            raise ValueError(
                f"{path}: prompt shape, head, task or deep=... differ from slot {label!r}; use load_prompt"
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
            own = slot.head_params()
            for key, value in new.head_params().items():
                own[key].copy_(value)
            if reparam:
                for key, value in reparam.items():  # state_dict tensors share the parameters' storage
                    value.copy_(pf.deep_reparam[key])
            elif slot.deep is not None and new.deep is not None:
                slot.deep.vectors.copy_(new.deep.vectors)
        slot.temperature = new.temperature

    def save_prompt(self, path: str | os.PathLike[str], name: str | None = None) -> Path:
        """Write one prompt (default: the active one), its head and task to a ``.safetensors`` file, atomically.

        Examples:
            >>> wrapper.save_prompt("sentiment.safetensors")  # doctest: +SKIP
        """
        return self.prompt_file(name).save(path)

    def prompt_file(self, name: str | None = None) -> PromptFile:
        """The in-memory :class:`PromptFile` of a slot (what :meth:`save_prompt` writes).

        A deep prompt's vectors are stored folded (plain ``(L - 1, N, H)``), so the file runs
        without the MLP they may be trained through; that MLP's state rides along for resuming.
        """
        slot = self.slot(name)
        deep = slot.deep
        headless = (
            slot.task is not None and not slot.task.has_head
        )  # text-to-label: classes, no classifier head
        return PromptFile(
            config=slot.config,
            prompt=slot.prompt.detach(),
            head={k: v.detach() for k, v in slot.head_params().items()},
            base_model=str(
                getattr(self.model.config, "_name_or_path", "") or getattr(self.model, "name_or_path", "")
            ),
            model_type=str(getattr(self.model.config, "model_type", "")),
            num_labels=len(slot.id2label) if headless else backbone.num_labels(self.model),
            id2label=slot.id2label,
            task=slot.task,
            temperature=slot.temperature,
            deep_prompts=None if deep is None else deep.folded(),
            deep_reparam={k: v.detach() for k, v in deep.state_dict().items()}
            if deep is not None and deep.reparam
            else {},
            base_fingerprint=base_fingerprint(self.model),
        )

    def fold_deep_reparam(self, name: str | None = None) -> None:
        """Replace a deep prompt's MLP by the plain vectors it gives (done training through the MLP).

        Saved files get smaller (no ``deep_reparam.*`` state) and further training updates the
        vectors directly. The slot's deep parameters are new objects: build a new optimizer.

        Raises:
            ValueError: the slot has no reparameterised deep prompt.
        """
        slot = self.slot(name)
        if slot.deep is None or not slot.deep.reparam:
            raise ValueError(
                f"prompt {name or self.active_prompt!r} has no deep prompt trained through an MLP to fold"
            )
        slot.deep = DeepPrompt(slot.deep.folded()).to(slot.prompt.device)

    # ---------------------------------------------------------------- slots

    @property
    def prompt_config(self) -> SoftPromptConfig:
        """:class:`SoftPromptConfig` of the active prompt."""
        return self.slot(None).config

    @property
    def task(self) -> Task | None:
        """The active prompt's :class:`~softprompt.Task` (``None`` for a bare or token-level model)."""
        return self.slot(None).task

    @property
    def id2label(self) -> dict[int, str]:
        """The active prompt's class names by id."""
        return dict(self.slot(None).id2label)

    @property
    def prompt_names(self) -> list[str]:
        return list(self.prompts)

    def set_active_prompt(self, name: str) -> None:
        """Make ``name`` the prompt used when a forward gets no ``prompt_names``."""
        self.slot(name)
        self.active_prompt = name

    def remove_prompt(self, name: str) -> None:
        """Drop a slot (not the active one)."""
        if name == self.active_prompt:
            raise ValueError(
                f"cannot remove the active prompt {name!r}; set_active_prompt(...) another one first"
            )
        with changing(self, name):  # a running call keeps its prompt: removing it waits for the call
            self.slot(name)
            del self.prompts[name]
        self._sync_deep_hooks()

    @contextlib.contextmanager
    def using_prompts(self, names: Iterable[str]) -> Iterator[None]:
        """While open, the prompts ``names`` stay as they are: ``remove_prompt`` and replacing them wait.

        :meth:`~softprompt.SoftPromptWrapper.predict` holds its prompt (or ensemble) this way, so a call that
        another thread races with ``remove_prompt`` finishes with the prompt it started with.

        Raises:
            KeyError: an unknown name (before anything runs).

        Examples:
            >>> with wrapper.using_prompts(["sst2"]):  # doctest: +SKIP
            ...     logits = wrapper(**batch, prompt_names=["sst2"] * 8).logits
        """
        with holding(self, names, self.slot):
            yield

    def num_trainable_parameters(self, name: str | None = None) -> int:
        """Trainable parameters of one slot: prompt, deep vectors (or their MLP), head if ``train_head``."""
        return sum(p.numel() for p in self.slot(name).parameters() if p.requires_grad)
