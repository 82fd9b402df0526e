"""``save_pretrained``, ``from_pretrained``, ``load_pretrained`` and ``push_to_hub`` for :class:`~softprompt.SoftPromptWrapper`.

The folder they read and write is :mod:`softprompt.hub.folder`; the Hub side is :mod:`softprompt.hub.transport`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from torch import nn

from softprompt.hub.folder import (
    PEFT_CONFIG_NAME,
    PEFT_WEIGHTS_NAME,
    slot_from_pretrained,
    write_prompt_folder,
)

if TYPE_CHECKING:
    from typing_extensions import Self


__all__ = ["PretrainedMixin"]

PeftChoice = Literal["auto"] | bool
HUB_OPTIONS = ("cache_dir", "token", "local_files_only", "endpoint", "force_download")  # hf_hub_download's


def _base_model(
    name: str | os.PathLike[str], pretrained: Any, revision: str | None, hub: dict[str, Any], tokenizer: Any
) -> tuple[nn.Module, Any]:
    """The base model ``name`` as the prompt of ``pretrained`` needs it, and its tokenizer (unless given)."""
    import transformers

    from softprompt.files.prompt_file import read_prompt_file
    from softprompt.hub.folder import PROMPT_NAME, locate_prompt_folder
    from softprompt.models.loading import load_base_model

    folder, found = locate_prompt_folder(pretrained, revision, hub)
    if found != PROMPT_NAME:
        raise ValueError(
            f"{str(pretrained)!r} holds a PEFT adapter, which does not say which model class it needs: pass the "
            "loaded model instead of its name"
        )
    model = load_base_model(name, read_prompt_file(folder / PROMPT_NAME))
    if tokenizer is None:
        tokenizer = transformers.AutoTokenizer.from_pretrained(os.fspath(name))
    return model, tokenizer


class PretrainedMixin:
    """``save_pretrained`` / ``from_pretrained`` / ``load_pretrained`` / ``push_to_hub`` for :class:`SoftPromptWrapper`."""

    model: nn.Module
    prompts: nn.ModuleDict
    active_prompt: str

    def _write_folder(self, folder: Any, name: str | None, **options: Any) -> Path:
        """The prompt folder of slot ``name`` (default: the active one); KeyError for an unknown name first."""
        slot = self.slot(name)  # type: ignore[attr-defined]
        name = self.active_prompt if name is None else name
        return write_prompt_folder(self.model, slot, self.prompt_file(name), folder, name=name, **options)  # type: ignore[attr-defined]

    def save_pretrained(
        self,
        save_directory: str | os.PathLike[str],
        *,
        name: str | None = None,
        metrics: dict[str, Any] | None = None,
        peft: PeftChoice = "auto",
    ) -> Path:
        """Write one prompt (default: the active one) as a folder: prompt file, model card, PEFT adapter.

        Writes ``prompt.safetensors``, a ``README.md`` model card, and, where PEFT can hold the prompt
        exactly (``placement="prepend"``, not deep), PEFT's ``adapter_config.json`` +
        ``adapter_model.safetensors``, so ``peft.PeftModel.from_pretrained(model, folder)`` loads the same
        folder. Everything is built and checked before anything is written; each file is written atomically,
        and PEFT files of an earlier save that no longer match are removed. Other files are left alone.

        Args:
            save_directory: Folder to create or update.
            name: Prompt slot; default the active prompt.
            metrics: Metrics of the run that made the prompt (``{"eval_accuracy": 0.87}``), for the card.
            peft: ``"auto"`` writes the PEFT files where possible and says in the card why not otherwise;
                ``True`` makes a prompt PEFT cannot hold an error; ``False`` never writes them.

        Returns:
            The folder.

        Raises:
            TypeError: ``save_directory`` is not a path, or ``metrics`` is not a flat mapping.
            ValueError: ``save_directory`` is a file, ``peft`` is not ``"auto"``/``True``/``False``,
                ``peft=True`` for a prompt PEFT cannot hold, or a value the prompt file refuses.
            KeyError: no prompt named ``name``.

        Examples:
            >>> folder = wrapper.save_pretrained("sentiment-prompt", metrics={"eval_accuracy": 0.874})
            >>> sorted(p.name for p in folder.iterdir())
            ['README.md', 'prompt.safetensors']
        """
        return self._write_folder(save_directory, name, metrics=metrics, peft=peft)

    @classmethod
    def from_pretrained(
        cls,
        model: nn.Module | str | os.PathLike[str],
        pretrained: str | os.PathLike[str],
        *,
        revision: str | None = None,
        name: str = "default",
        tokenizer: Any | None = None,
        strict_base_model: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
        endpoint: str | None = None,
        force_download: bool = False,
    ) -> Self:
        """Wrap ``model`` with the prompt of a folder written by :meth:`save_pretrained`, local or on the Hub.

        A local folder is used when ``pretrained`` is one; otherwise it is a Hub repo id, downloaded
        through the Hugging Face cache (``HF_HUB_OFFLINE=1`` or ``local_files_only=True``: the cached
        copy, or a one-line error saying what to do). A folder holding only a PEFT prompt-tuning
        adapter loads too (:func:`softprompt.import_peft_adapter`).

        Args:
            model: The base model the prompt was trained on (a fresh copy: the wrapper freezes it), or its
                Hub id or folder: then it is loaded with the model class, labels and head size the prompt
                file names, and its tokenizer too unless ``tokenizer`` is given.
            pretrained: A folder, or a Hub repo id (``"user/name"``).
            revision: Hub branch, tag or commit (default ``"main"``).
            name: Name of the prompt slot.
            tokenizer: The model's tokenizer (for ``predict`` and ``tokenize``).
            strict_base_model: Raise instead of warn when the prompt was trained on another base model.
            cache_dir: Where the Hub cache is (Hub repos only; as for ``huggingface_hub.hf_hub_download``).
            token: A Hub token for a private repo.
            local_files_only: Use the cached copy only, never the network.
            endpoint: Another Hub's URL.
            force_download: Download again even when cached.

        Returns:
            A wrapper whose active prompt is the folder's.

        Raises:
            TypeError: ``pretrained`` is not a string or path.
            FileNotFoundError: not a folder nor a Hub repo; no prompt in it; not cached while offline.
            ValueError: a file instead of a folder, ``revision`` for a local folder, or a prompt that does
                not fit ``model`` (see :meth:`~softprompt.SoftPromptWrapper.load_prompt`).

        Examples:
            >>> folder = wrapper.save_pretrained("sentiment-prompt")
            >>> again = SoftPromptWrapper.from_pretrained(model, "sentiment-prompt", tokenizer=tokenizer)
            >>> again = SoftPromptWrapper.from_pretrained("bert-base-uncased", "sentiment-prompt")  # base by name
            >>> again.predict(["a great product"])
            [Prediction(label=..., label_name=..., confidence=...)]
            >>> from_hub = SoftPromptWrapper.from_pretrained(model, "me/sentiment-prompt")  # doctest: +SKIP
        """
        hub = {"cache_dir": cache_dir, "token": token, "local_files_only": local_files_only,
               "endpoint": endpoint, "force_download": force_download}  # fmt: skip
        if isinstance(model, (str, os.PathLike)):
            model, tokenizer = _base_model(model, pretrained, revision, hub, tokenizer)
        slot = slot_from_pretrained(model, pretrained, revision, hub, strict_base_model)
        return cls(model, slot.config, tokenizer=tokenizer, name=name, _slot=slot)  # type: ignore[call-arg]

    def load_pretrained(
        self,
        pretrained: str | os.PathLike[str],
        name: str | None = None,
        *,
        activate: bool = False,
        replace: bool = False,
        revision: str | None = None,
        strict_base_model: bool = False,
        **hub: Any,
    ) -> str:
        """Add the prompt of a folder or Hub repo (see :meth:`from_pretrained`) as a named slot; returns the name.

        Hot-swapping prompts from the Hub: one backbone, a slot per repo.

        Args:
            pretrained: A folder, or a Hub repo id.
            name: Slot name; default the folder's or repo's name.
            activate: Make it the active prompt.
            replace: Allow overwriting an existing slot of that name.
            revision: Hub branch, tag or commit.
            strict_base_model: Raise instead of warn when the prompt was trained on another base model.
            **hub: ``cache_dir``, ``token``, ``local_files_only``, ``endpoint``, ``force_download``.

        Returns:
            The slot's name.

        Raises:
            TypeError: ``pretrained`` is not a string or path, or an unknown ``**hub`` option.
            FileNotFoundError: as :meth:`from_pretrained`.
            ValueError: as :meth:`from_pretrained`; also a name already taken.

        Examples:
            >>> folder = wrapper.save_pretrained("sick-relatedness-prompt")
            >>> wrapper.load_pretrained("sick-relatedness-prompt", activate=True)
            'sick-relatedness-prompt'
            >>> wrapper.load_pretrained("me/another-prompt")  # a Hub repo id  # doctest: +SKIP
            'another-prompt'
        """
        unknown = sorted(set(hub) - set(HUB_OPTIONS))
        if unknown:
            raise TypeError(f"load_pretrained() got unexpected keyword arguments {unknown}")
        if not isinstance(pretrained, (str, os.PathLike)):
            raise TypeError(f"expected a folder or a Hub repo id, got {type(pretrained).__name__}")
        name = Path(pretrained).name if name is None else name
        if name in self.prompts and not replace:
            raise ValueError(f"a prompt named {name!r} is loaded already; pass replace=True or another name")
        self.add_slot(name, slot_from_pretrained(self.model, pretrained, revision, hub, strict_base_model))  # type: ignore[attr-defined]
        if activate:
            self.set_active_prompt(name)  # type: ignore[attr-defined]
        return name

    def push_to_hub(
        self,
        repo_id: str,
        *,
        name: str | None = None,
        private: bool | None = None,
        token: str | bool | None = None,
        revision: str | None = None,
        commit_message: str = "Upload prompt with softprompt",
        metrics: dict[str, Any] | None = None,
        endpoint: str | None = None,
        create_pr: bool = False,
        peft: PeftChoice = "auto",
    ) -> Any:
        """Upload one prompt as a Hub repo: :meth:`save_pretrained` into a temporary folder, then one commit.

        Creates the repo (and the branch ``revision``) if needed. PEFT files of an earlier push that this
        prompt cannot have are deleted in the same commit.

        Args:
            repo_id: ``"user/name"`` (or ``"name"`` for the token's own namespace).
            name: Prompt slot; default the active prompt.
            private: Visibility of a new repo (an existing repo keeps its own).
            token: Hub token; default the saved login or ``HF_TOKEN``.
            revision: Branch to commit to (default the default branch).
            commit_message: The commit's title.
            metrics: Metrics for the model card (see :meth:`save_pretrained`).
            endpoint: Hub URL (default ``HF_ENDPOINT`` or huggingface.co).
            create_pr: Open a pull request instead of committing to the branch.
            peft: As for :meth:`save_pretrained`.

        Returns:
            ``huggingface_hub.CommitInfo``: a ``str`` (the commit URL) with ``.oid`` and ``.pr_url``.

        Raises:
            TypeError, ValueError, KeyError: as :meth:`save_pretrained`; a bad ``repo_id``; ``create_pr``
                with a ``revision``.
            RuntimeError: ``HF_HUB_OFFLINE=1`` is set.

        Examples:
            >>> wrapper.push_to_hub("me/sentiment-prompt", metrics={"eval_accuracy": 0.874})  # doctest: +SKIP
        """
        from huggingface_hub import constants
        from huggingface_hub.utils import validate_repo_id

        from softprompt.hub.transport import upload_prompt_folder

        if not isinstance(repo_id, str):
            raise TypeError(f"repo_id must be a string ('user/name'), got {type(repo_id).__name__}")
        validate_repo_id(repo_id)  # HFValidationError, a ValueError
        if not isinstance(commit_message, str) or not commit_message.strip():
            raise ValueError(f"commit_message must be a non-empty string, got {commit_message!r}")
        if create_pr and revision not in (None, constants.DEFAULT_REVISION):
            raise ValueError(
                f"create_pr=True opens a pull request against the default branch; drop revision={revision!r}"
            )
        with tempfile.TemporaryDirectory(prefix="softprompt-push-") as tmp:
            folder = self._write_folder(tmp, name, metrics=metrics, peft=peft, location=repo_id)
            if constants.HF_HUB_OFFLINE:
                raise RuntimeError(
                    "push_to_hub needs the network and HF_HUB_OFFLINE=1 is set: unset it, or save_pretrained(folder) "
                    "now and upload that folder later"
                )
            peft_written = (folder / PEFT_CONFIG_NAME).is_file()
            return upload_prompt_folder(
                folder, repo_id, token=token, private=private, revision=revision, commit_message=commit_message,
                endpoint=endpoint, create_pr=create_pr,
                delete_patterns=() if peft_written else (PEFT_CONFIG_NAME, PEFT_WEIGHTS_NAME),
            )  # fmt: skip
