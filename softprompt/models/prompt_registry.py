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

        Args:
            name: A loaded prompt's name; ``None`` for the active prompt.

        Returns:
            The slot: the prompt's vectors, its head, task, class names and temperature.

        Raises:
            KeyError: no prompt of that name.

        Examples:
            >>> wrapper.slot().config.num_virtual_tokens
            4
        """
        name = self.active_prompt if name is None else name
        if name not in self.prompts:
            raise KeyError(f"no prompt named {name!r}; loaded prompts: {list(self.prompts)}")
        return self.prompts[name]

    def batch_slots(self, prompt_names: Sequence[str] | None, batch: int) -> list[tuple[str, PromptSlot]]:
        """Per example, its ``(name, slot)``; the slots must share their length and placement to share a batch.

        Args:
            prompt_names: One prompt name per example, or ``None``: the active prompt for all.
            batch: The number of examples.

        Returns:
            ``batch`` pairs ``(name, slot)``, in the examples' order.

        Raises:
            KeyError: an unknown name.
            ValueError: not one name per example, or prompts that cannot share a batch.

        Examples:
            >>> [name for name, _ in wrapper.batch_slots(None, 2)]
            ['default', 'default']
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
            return slots[0][1].vectors().unsqueeze(0).expand(batch, -1, -1)  # (B, N, E), no copy
        vectors = {name: slot.vectors() for name, slot in dict(slots).items()}  # each MLP run once
        return torch.stack([vectors[name] for name, _ in slots])  # (B, N, E)

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
        """Add the prompt in ``path`` as a named slot (with its own head and task).

        Args:
            path: A prompt ``.safetensors`` file.
            name: Slot name; defaults to the file's stem.
            activate: Make it the active prompt.
            replace: Allow overwriting an existing slot of that name (otherwise an error, so a
                trained prompt is never lost by accident).
            strict_base_model: Raise instead of warn when the file was trained on another base model.

        Returns:
            The slot's name.

        Raises:
            FileNotFoundError: no such file.
            ValueError: unreadable file or metadata, missing tensors, NaN/inf values, embedding dim,
                num_labels, task or head shapes that differ from this model, or a name already taken.

        Examples:
            >>> path = wrapper.save_prompt("sick-relatedness.safetensors")
            >>> wrapper.load_prompt(path, activate=True)
            'sick-relatedness'
            >>> wrapper.prompt_names
            ['default', 'sick-relatedness']
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

        Args:
            path: A prompt ``.safetensors`` file of the same shape, head and task as the slot.
            name: The slot to overwrite (default: the active one).

        Raises:
            KeyError: no prompt of that name.
            ValueError: the file's prompt shape, head, task, deep-ness or MLP differ from the slot's.

        Examples:
            >>> path = wrapper.save_prompt("best.safetensors")
            >>> with torch.no_grad():
            ...     _ = wrapper.slot().prompt.zero_()
            >>> wrapper.reload_prompt(path)
            >>> bool(wrapper.slot().prompt.abs().sum() > 0)
            True
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
        if slot.residual is not None and not _same_state(pf.prompt_reparam, _prompt_state(slot)):
            raise ValueError(
                f"{path}: slot {label!r} trains its prompt through a residual MLP, and the file does not hold that "
                "MLP's state (only the folded vectors); load it with load_prompt(..., replace=True) instead"
            )
        reparam: dict[str, torch.Tensor] = {}
        if slot.deep is not None and slot.deep.reparam:
            reparam = slot.deep.state_dict()
            if not _same_state(pf.deep_reparam, reparam):
                raise ValueError(
                    f"{path}: slot {label!r} trains its deep prompt through an MLP, and the file does not hold that "
                    "MLP's state (only the folded vectors, or an MLP of another layout: before softprompt's scaled "
                    "MLP, its tensors were named encoder.N.weight); load it with load_prompt(..., replace=True) "
                    "instead"
                )
        with torch.no_grad():
            if slot.residual is not None:  # the raw vectors and the MLP, so training goes on exactly
                for key, value in _prompt_state(slot).items():
                    value.copy_(pf.prompt_reparam[key])
            else:
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

        Args:
            path: The file to write (its folder must exist); an existing file is replaced only once the
                new one is complete.
            name: The prompt to save (default: the active one).

        Returns:
            The path written.

        Raises:
            KeyError: no prompt of that name.
            OSError: the file cannot be written (the old one, if any, is left as it was).

        Examples:
            >>> wrapper.save_prompt("sentiment.safetensors")
            PosixPath('sentiment.safetensors')
        """
        return self.prompt_file(name).save(path)

    def prompt_file(self, name: str | None = None) -> PromptFile:
        """The in-memory :class:`~softprompt.PromptFile` of a slot (what :meth:`save_prompt` writes).

        Vectors trained through an MLP (a residual prompt, a reparameterised deep prompt) are stored
        folded (plain ``(N, E)`` and ``(L - 1, N, H)``), so the file runs without the MLP; the MLP's state
        rides along for resuming training.

        Args:
            name: The prompt (default: the active one).

        Returns:
            The prompt's vectors, head, task, labels, temperature and base-model fingerprint.

        Examples:
            >>> wrapper.prompt_file().prompt.shape  # (virtual tokens, embedding size)
            torch.Size([4, 32])
        """
        slot = self.slot(name)
        deep = slot.deep
        headless = (
            slot.task is not None and not slot.task.has_head
        )  # text-to-label: classes, no classifier head
        return PromptFile(
            config=slot.config,
            prompt=slot.vectors().detach(),  # folded
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
            prompt_reparam={k: v.detach() for k, v in _prompt_state(slot).items()}
            if slot.residual is not None
            else {},
            base_fingerprint=base_fingerprint(self.model),
        )

    def fold_reparam(self, name: str | None = None) -> None:
        """Replace every MLP a prompt trains through (residual, deep) by the plain vectors it gives.

        What a prompt file holds and a forward computes do not change; saved files get smaller (no
        training state) and further training updates the vectors directly. The slot's prompt
        parameters are new objects: build a new optimizer. :func:`~softprompt.train_prompt` does this
        when training ends.

        Args:
            name: The prompt (default: the active one).

        Raises:
            KeyError: no prompt of that name.
            ValueError: the prompt trains through no MLP.

        Examples:
            >>> residual = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=4, residual_hidden=8),
            ...                              tokenizer=tokenizer)
            >>> before = residual.num_trainable_parameters()
            >>> residual.fold_reparam()
            >>> residual.num_trainable_parameters() < before
            True
        """
        slot = self.slot(name)
        if not slot.reparameterized:
            raise ValueError(f"prompt {name or self.active_prompt!r} trains through no MLP; nothing to fold")
        slot.fold()

    def fold_deep_reparam(self, name: str | None = None) -> None:
        """Replace a deep prompt's MLP by the plain vectors it gives (done training through the MLP).

        Saved files get smaller (no ``deep_reparam.*`` state) and further training updates the
        vectors directly. The slot's deep parameters are new objects: build a new optimizer.

        Args:
            name: The prompt (default: the active one).

        Raises:
            ValueError: the slot has no reparameterised deep prompt.

        Examples:
            >>> config = SoftPromptConfig(num_virtual_tokens=4, deep=True, deep_reparam_hidden=8)
            >>> deep = SoftPromptWrapper(model, config, tokenizer=tokenizer)
            >>> before = deep.num_trainable_parameters()
            >>> deep.fold_deep_reparam()
            >>> deep.num_trainable_parameters() < before
            True
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
        """The names of the loaded prompts, in the order they were added.

        Examples:
            >>> wrapper.prompt_names
            ['default']
        """
        return list(self.prompts)

    def set_active_prompt(self, name: str) -> None:
        """Make ``name`` the prompt used when a forward gets no ``prompt_names``.

        Args:
            name: A loaded prompt's name.

        Raises:
            KeyError: no prompt of that name.

        Examples:
            >>> wrapper.load_prompt(wrapper.save_prompt("other.safetensors"))
            'other'
            >>> wrapper.set_active_prompt("other")
            >>> wrapper.active_prompt
            'other'
        """
        self.slot(name)
        self.active_prompt = name

    def remove_prompt(self, name: str) -> None:
        """Drop a slot (not the active one); a call running with it finishes first.

        Args:
            name: A loaded prompt's name, not the active one.

        Raises:
            KeyError: no prompt of that name.
            ValueError: ``name`` is the active prompt.

        Examples:
            >>> wrapper.load_prompt(wrapper.save_prompt("old.safetensors"))
            'old'
            >>> wrapper.remove_prompt("old")
            >>> wrapper.prompt_names
            ['default']
        """
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

        Args:
            names: The prompts to hold.

        Returns:
            A context manager; nothing is bound by ``with ... as``.

        Raises:
            KeyError: an unknown name (before anything runs).

        Examples:
            >>> batch = tokenizer(["a great product", "a dull one"], return_tensors="pt", padding=True)
            >>> with wrapper.using_prompts(["default"]):
            ...     logits = wrapper(**batch, prompt_names=["default"] * 2).logits
            >>> logits.shape
            torch.Size([2, 2])
        """
        with holding(self, names, self.slot):
            yield

    def num_trainable_parameters(self, name: str | None = None) -> int:
        """Trainable parameters of one slot: prompt, deep vectors (or their MLP), head if ``train_head``.

        Args:
            name: The prompt (default: the active one).

        Returns:
            The number of trainable values.

        Examples:
            >>> wrapper.num_trainable_parameters()  # 4 x 32 prompt values + the classifier's 32 x 2 + 2
            194
        """
        return sum(p.numel() for p in self.slot(name).parameters() if p.requires_grad)


def _prompt_state(slot: PromptSlot) -> dict[str, torch.Tensor]:
    """A residual prompt's training state: the raw ``(N, E)`` vectors and the MLP (sharing their storage)."""
    assert slot.residual is not None
    return {"prompt": slot.prompt, **{f"residual.{k}": v for k, v in slot.residual.state_dict().items()}}


def _same_state(found: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> bool:
    return sorted(found) == sorted(expected) and all(found[k].shape == v.shape for k, v in expected.items())
