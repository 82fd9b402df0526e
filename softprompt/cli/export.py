"""``softprompt export PROMPT --model M --output DIR``: a prompt merged into a model folder that runs without softprompt.

The prompt file is validated (a deep prompt is refused) and the output folder checked before the
base model is loaded; the prompt must belong to ``--model`` (its recorded fingerprint is checked, a
mismatch is an error, not a warning). ``--format onnx`` adds ``model.onnx`` (``--quantize``: and an int8
``model_quantized.onnx``). The folder is written whole and moved into place (docs/serving.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from softprompt.cli.command_args import ExportArgs

__all__ = ["export_prompt"]


def export_prompt(args: ExportArgs) -> int:
    """Run ``softprompt export``; prints the folder and its files as JSON.

    Raises:
        ValueError: a deep prompt, ``--quantize`` without ``--format onnx``, a non-empty ``--output``
            without ``--overwrite``, a prompt trained on another base model, what the export refuses.
    """
    import transformers

    from softprompt.cli.loading import prompt_path
    from softprompt.files.prompt_file import read_prompt_file
    from softprompt.models.loading import load_base_model
    from softprompt.utils.atomic import check_replaceable
    from softprompt.wrapper.model import SoftPromptWrapper

    if args.quantize and args.format != "onnx":
        raise ValueError("--quantize applies to --format onnx (int8 ONNX Runtime graph)")
    check_replaceable(args.output, overwrite=args.overwrite, flag="--overwrite")  # before loading anything
    path = prompt_path(args.prompt, args.revision)
    pf = read_prompt_file(path)
    if pf.config.deep:
        raise ValueError(
            f"{path}: a deep prompt adds vectors at every layer's input, which a plain model folder cannot hold; "
            "only input-only prompts (deep=False) can be exported"
        )
    tokenizer = transformers.AutoTokenizer.from_pretrained(args.model)
    model = load_base_model(args.model, pf)
    wrapper = SoftPromptWrapper.from_prompt(model, path, tokenizer=tokenizer, strict_base_model=True)
    if args.format == "onnx":
        folder = wrapper.export_onnx(args.output, quantize=args.quantize, overwrite=args.overwrite)
    else:
        folder = wrapper.export_merged(args.output, overwrite=args.overwrite)
    files = {p.name: p.stat().st_size for p in sorted(Path(folder).iterdir()) if p.is_file()}
    print(json.dumps({"folder": str(folder), "format": args.format, "files": files}))
    return 0
