"""A prompt folder, local or a Hub repo: its layout, writing one, and finding the prompt in one.

Layout::

    prompt.safetensors          the prompt file (:mod:`softprompt.files.prompt_file`): the unit softprompt loads
    README.md                   model card (:mod:`softprompt.hub.model_card`): front matter for the Hub, how to load it
    adapter_config.json         PEFT prompt-tuning adapter of the same prompt and head, written only where
    adapter_model.safetensors   PEFT can hold it exactly (placement="prepend", not deep; see softprompt.hub.peft_export)

A folder with only the two PEFT files (a PEFT prompt-tuning adapter) loads too.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from softprompt.core.constants import CARD_NAME, PEFT_CONFIG_NAME, PEFT_WEIGHTS_NAME, PROMPT_NAME
from softprompt.utils.atomic import atomic_write_bytes, atomic_write_text, check_dir_target

if TYPE_CHECKING:
    from softprompt.files.prompt_file import PromptFile
    from softprompt.models.slot import PromptSlot

__all__ = [
    "CARD_NAME",
    "PEFT_CONFIG_NAME",
    "PEFT_WEIGHTS_NAME",
    "PROMPT_NAME",
    "locate_prompt_folder",
    "slot_from_pretrained",
    "write_prompt_folder",
]

logger = logging.getLogger(__name__)

_ALTERNATIVES = ((PROMPT_NAME,), (PEFT_CONFIG_NAME, PEFT_WEIGHTS_NAME))


def _check_peft(peft: object) -> None:
    if not (isinstance(peft, bool) or peft == "auto"):
        raise ValueError(f"peft must be 'auto', True or False, got {peft!r}")


def locate_prompt_folder(
    source: str | os.PathLike[str], revision: str | None, hub: dict[str, Any]
) -> tuple[Path, str]:
    """(folder, PROMPT_NAME or PEFT_CONFIG_NAME: what it holds) of a local folder or a Hub repo (downloaded).

    Raises:
        TypeError: ``source`` is not a string or path.
        FileNotFoundError: neither a folder nor a Hub repo id; no prompt in it; not cached while offline.
        ValueError: a file instead of a folder; ``revision`` for a local folder.

    Examples:
        >>> locate_prompt_folder("sentiment-prompt", None, {})  # doctest: +SKIP
        (PosixPath('sentiment-prompt'), 'prompt.safetensors')
    """
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"expected a folder or a Hub repo id, got {type(source).__name__}")
    path = Path(source)
    if path.is_dir():
        if revision is not None:
            raise ValueError(
                f"revision={revision!r} applies to Hub repos, but {str(source)!r} is a local folder"
            )
        for files in _ALTERNATIVES:
            if all((path / name).is_file() for name in files):
                return path, files[0]
        raise FileNotFoundError(
            f"folder {str(source)!r} holds no {PROMPT_NAME} (nor a PEFT {PEFT_CONFIG_NAME} + {PEFT_WEIGHTS_NAME}); "
            "write one with wrapper.save_pretrained(folder), or load a single prompt file with from_prompt/load_prompt"
        )
    if path.exists():
        raise ValueError(
            f"{str(source)!r} is a file, not a folder; load a prompt file with SoftPromptWrapper.from_prompt "
            "or wrapper.load_prompt"
        )
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        if not isinstance(source, str):
            raise HFValidationError("a path object")
        validate_repo_id(source)
    except HFValidationError:
        raise FileNotFoundError(
            f"{str(source)!r} is neither an existing folder nor a Hub repo id ('user/name')"
        ) from None
    from softprompt.hub.transport import download_first

    return download_first(source, _ALTERNATIVES, revision=revision, **hub)


def write_prompt_folder(
    model: nn.Module,
    slot: PromptSlot,
    pf: PromptFile,
    folder: str | os.PathLike[str],
    *,
    name: str,
    metrics: Any = None,
    peft: Any = "auto",
    location: str | None = None,
) -> Path:
    """What :meth:`~softprompt.SoftPromptWrapper.save_pretrained` does, for one prompt slot on ``model``.

    Args:
        model: The frozen base model (its class names the card's loading code; PEFT files read its head).
        slot: The prompt slot; ``pf`` its prompt file (``wrapper.prompt_file(name)``); ``name`` its name.
        folder: The folder to write; ``location``: the Hub repo id the card names.
        metrics: As for :meth:`~softprompt.SoftPromptWrapper.save_pretrained`.
        peft: As for :meth:`~softprompt.SoftPromptWrapper.save_pretrained`.

    Examples:
        >>> write_prompt_folder(wrapper.model, wrapper.slot(), wrapper.prompt_file(), "sentiment-prompt",
        ...                     name="default", location="me/sentiment-prompt")  # doctest: +SKIP
    """
    from softprompt.hub.model_card import check_metrics, render_model_card
    from softprompt.hub.peft_export import adapter_files

    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"save_directory must be a folder path, got {type(folder).__name__}")
    out = check_dir_target(folder, "save_pretrained folder")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a prompt name (str), got {type(name).__name__}")
    _check_peft(peft)
    metrics = check_metrics(metrics)
    prompt_bytes = pf.to_bytes(str(out / PROMPT_NAME))
    peft_files: dict[str, bytes] = {}
    note = "not written (peft=False)"
    if peft is not False:
        try:
            peft_files = adapter_files(model, slot, name)
        except ValueError as exc:
            if peft is True:
                raise
            note = f"PEFT cannot hold this prompt exactly: {exc}"
    card = render_model_card(
        pf, model_class=type(model).__name__, location=location or str(folder), from_hub=location is not None,
        metrics=metrics, peft_written=bool(peft_files), peft_note=note,
    )  # fmt: skip
    # everything is checked: write. The adapter config goes first and comes back last, so a crash
    # midway never leaves a PEFT adapter that disagrees with prompt.safetensors.
    with contextlib.suppress(FileNotFoundError):
        (out / PEFT_CONFIG_NAME).unlink()
    atomic_write_bytes(out / PROMPT_NAME, prompt_bytes, follow_links=False)
    if peft_files:
        for file_name, data in peft_files.items():  # weights, then the config
            atomic_write_bytes(out / file_name, data, follow_links=False)
    else:
        with contextlib.suppress(FileNotFoundError):
            (out / PEFT_WEIGHTS_NAME).unlink()
    atomic_write_text(out / CARD_NAME, card, follow_links=False)
    logger.info(
        "saved prompt %r to %s (%s)",
        name,
        out,
        "with PEFT adapter" if peft_files else note,
    )
    return out


def slot_from_pretrained(
    model: nn.Module, pretrained: Any, revision: str | None, hub: dict[str, Any], strict_base_model: bool
) -> PromptSlot:
    """Find the prompt of a folder or Hub repo and check it against ``model``; build its slot.

    Examples:
        >>> slot = slot_from_pretrained(model, "me/sentiment-prompt", None, {}, False)  # doctest: +SKIP
    """
    from softprompt.files.prompt_file import read_prompt_file
    from softprompt.hub.peft_import import slot_from_adapter
    from softprompt.models.slot import slot_from_file

    folder, found = locate_prompt_folder(pretrained, revision, hub)
    if found == PROMPT_NAME:
        return slot_from_file(
            read_prompt_file(folder / PROMPT_NAME), model, strict_base_model=strict_base_model
        )
    return slot_from_adapter(model, folder)
