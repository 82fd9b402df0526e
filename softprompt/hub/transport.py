"""Hugging Face Hub transport for prompt folders: download one through the cache (offline-aware), upload one.

Only ``huggingface_hub`` talks to the network: ``hf_hub_download`` (so ``HF_HUB_OFFLINE``,
``HF_ENDPOINT``, ``HF_HUB_CACHE`` and tokens work as everywhere else in the ecosystem) and
``HfApi.create_repo`` / ``create_branch`` / ``upload_folder``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, constants, hf_hub_download
from huggingface_hub.errors import (
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from softprompt.version import __version__

__all__ = ["download_first", "upload_prompt_folder"]

_COMMIT = re.compile(r"[0-9a-f]{40}")


def _not_cached(repo_id: str, revision: str, cache_dir: str | os.PathLike[str] | None, local_only: bool,
                endpoint: str | None) -> str:  # fmt: skip
    """One line: why a Hub prompt could not be had and what to do."""
    cache = str(cache_dir or constants.HF_HUB_CACHE)
    what = f"Hub repo {repo_id!r} (revision {revision!r}) is not in the Hugging Face cache {cache!r}"
    fixes = (
        "pass cache_dir= of a cache that holds it, or pass the path of a folder written by save_pretrained"
    )
    if constants.HF_HUB_OFFLINE:
        return (
            f"{what} and HF_HUB_OFFLINE=1 forbids downloading it: run once with network access "
            f"(HF_HUB_OFFLINE unset) to cache it, {fixes}"
        )
    if local_only:
        return f"{what} and local_files_only=True forbids downloading it: drop local_files_only, {fixes}"
    host = endpoint or constants.ENDPOINT
    return f"{what} and {host} could not be reached: check the network (or HF_ENDPOINT), {fixes}"


def download_first(
    repo_id: str,
    alternatives: Sequence[Sequence[str]],
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
    endpoint: str | None = None,
    force_download: bool = False,
) -> tuple[Path, str]:
    """Download the files of the first alternative the repo holds; returns (their folder, first file name).

    Files come through the Hugging Face cache: offline (``HF_HUB_OFFLINE=1`` or ``local_files_only``)
    a cached copy is used, and every file of one alternative comes from the same commit.

    Args:
        repo_id: ``"user/name"`` of a model repo.
        alternatives: File sets to try in order, e.g. ``[["prompt.safetensors"], ["adapter_config.json",
            "adapter_model.safetensors"]]``.
        revision: Branch, tag or commit (default ``"main"``).
        cache_dir: as for ``hf_hub_download``.
        token: as for ``hf_hub_download``.
        local_files_only: as for ``hf_hub_download``.
        endpoint: as for ``hf_hub_download``.
        force_download: as for ``hf_hub_download``.

    Raises:
        FileNotFoundError: one line saying what to do: no such repo, or none of the files, or not cached
            while downloads are off or the Hub cannot be reached.
        huggingface_hub.errors.RevisionNotFoundError: the repo has no such revision.

    Examples:
        >>> folder, found = download_first("me/sentiment-prompt", [["prompt.safetensors"]])  # doctest: +SKIP
    """
    wanted = revision or constants.DEFAULT_REVISION
    kwargs: dict[str, Any] = {
        "cache_dir": cache_dir, "token": token, "local_files_only": local_files_only, "endpoint": endpoint,
        "force_download": force_download, "library_name": "softprompt", "library_version": __version__,
    }  # fmt: skip
    not_cached = False
    for files in alternatives:
        pinned = wanted
        try:
            paths = []
            for name in files:
                path = Path(hf_hub_download(repo_id, name, revision=pinned, **kwargs))
                if _COMMIT.fullmatch(
                    path.parent.name
                ):  # snapshots/<commit>/<name>: later files from the same commit
                    pinned = path.parent.name
                paths.append(path)
            return paths[0].parent, files[0]
        except RemoteEntryNotFoundError:
            continue
        except LocalEntryNotFoundError:
            not_cached = True
            continue
        except RevisionNotFoundError:
            raise
        except RepositoryNotFoundError as exc:
            raise FileNotFoundError(
                f"{repo_id!r} is no local folder, and the Hub has no repo {repo_id!r} (or it is private or gated: "
                "pass token=... or log in with `hf auth login`)"
            ) from exc
    if not_cached:
        raise FileNotFoundError(_not_cached(repo_id, wanted, cache_dir, local_files_only, endpoint)) from None
    names = " nor ".join(" + ".join(files) for files in alternatives)
    raise FileNotFoundError(f"Hub repo {repo_id!r} (revision {wanted!r}) holds no {names}")


def upload_prompt_folder(
    folder: str | os.PathLike[str],
    repo_id: str,
    *,
    token: str | bool | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str,
    endpoint: str | None = None,
    create_pr: bool = False,
    delete_patterns: Sequence[str] = (),
) -> Any:
    """Create the repo if needed (and the branch ``revision``), then upload ``folder`` in one commit.

    Args:
        folder: The folder to upload (its files go to the repo's root).
        repo_id: ``"user/name"`` or ``"name"`` (the token's own namespace).
        token: as for ``HfApi.create_repo``.
        private: as for ``HfApi.create_repo``.
        endpoint: as for ``HfApi.create_repo``.
        revision: Branch to commit to, created from the default branch if it does not exist.
        commit_message: The commit's title.
        create_pr: Open a pull request against the default branch instead of committing to it.
        delete_patterns: Files already in the repo to delete in the same commit (unless uploaded again).

    Returns:
        ``huggingface_hub.CommitInfo`` (a ``str``: the commit's URL; ``.oid``, ``.pr_url``).

    Examples:
        >>> info = upload_prompt_folder("pretrained", "me/sentiment-prompt", commit_message="Upload prompt")  # doctest: +SKIP
    """
    api = HfApi(endpoint=endpoint, token=token, library_name="softprompt", library_version=__version__)
    repo = api.create_repo(repo_id, private=private, exist_ok=True)
    repo_id = repo.repo_id or repo_id  # "name" alone lands in the token's namespace
    branch = revision if revision not in (None, constants.DEFAULT_REVISION) and not create_pr else None
    if branch and not branch.startswith("refs/") and not _COMMIT.fullmatch(branch):  # a branch name
        api.create_branch(repo_id, branch=branch, exist_ok=True)
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        revision=revision,
        commit_message=commit_message,
        create_pr=create_pr,
        delete_patterns=list(delete_patterns) or None,
    )
