"""What ``softprompt eval`` and ``predict`` load: a prompt on its base model, or a fine-tuned model folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from softprompt.cli.command_args import InferenceArgs

__all__ = ["load_for_inference", "prompt_path"]


def load_for_inference(args: InferenceArgs) -> tuple[Any, Any]:
    """A wrapper (``--prompt`` on ``--model``) or a fine-tuned model (``--model DIR`` alone)."""
    import transformers

    from softprompt.files.prompt_file import read_prompt_file
    from softprompt.models.loading import load_base_model
    from softprompt.models.quantize import quantize_linear_int8
    from softprompt.wrapper.model import SoftPromptWrapper

    if args.int8 and args.bf16:
        raise ValueError("--int8 and --bf16 exclude each other: pick one backbone precision")
    if args.prompt is None:
        from softprompt.finetune import load_finetuned

        model, tokenizer = load_finetuned(args.model)
        if args.int8:
            quantize_linear_int8(model.base_model)  # the head stays fp32
        return model, tokenizer
    tokenizer = transformers.AutoTokenizer.from_pretrained(args.model)
    path = prompt_path(args.prompt, args.revision)
    model = load_base_model(
        args.model, read_prompt_file(path)
    )  # the file is validated before the model loads
    wrapper = SoftPromptWrapper.from_prompt(model, path, tokenizer=tokenizer)
    return (wrapper.quantize_backbone() if args.int8 else wrapper), tokenizer


def prompt_path(prompt: str, revision: str | None = None) -> Path:
    """``--prompt``: a prompt file, a folder holding ``prompt.safetensors`` (a run's, or save_pretrained's),
    or a Hub repo id (downloaded through the Hugging Face cache).

    Raises:
        FileNotFoundError: none of these; a folder or repo without a softprompt prompt file.
        ValueError: ``--revision`` with a local file or folder.
    """
    from softprompt.core.constants import PROMPT_NAME
    from softprompt.hub.folder import locate_prompt_folder

    if Path(prompt).is_file():
        if revision is not None:
            raise ValueError(f"--revision applies to Hub repos, but {prompt!r} is a local file")
        return Path(prompt)
    folder, found = locate_prompt_folder(prompt, revision, {})
    if found != PROMPT_NAME:
        raise FileNotFoundError(
            f"{prompt!r} holds a PEFT adapter, not a softprompt prompt file: load it in Python with "
            "SoftPromptWrapper.from_pretrained(model, ...)"
        )
    return folder / PROMPT_NAME
