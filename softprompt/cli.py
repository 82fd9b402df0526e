"""The ``softprompt`` command: a thin argparse layer over the public API.

softprompt inspect imdb.safetensors
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _inspect(args: argparse.Namespace) -> int:
    from softprompt.prompt_file import read_prompt_file

    pf = read_prompt_file(args.file)
    info = {
        "file": str(args.file),
        "file_bytes": os.path.getsize(args.file),
        "base_model": pf.base_model,
        "model_type": pf.model_type,
        "embedding_dim": pf.embedding_dim,
        "num_labels": pf.num_labels,
        "id2label": {str(k): v for k, v in pf.id2label.items()},
        "temperature": pf.temperature,
        "config": pf.config.to_dict(),
        "tensors": {
            "prompt_embeddings": list(pf.prompt.shape),
            **{f"head.{k}": list(v.shape) for k, v in pf.head.items()},
        },
        "trainable_parameters": pf.prompt.numel() + sum(v.numel() for v in pf.head.values()),
    }
    print(json.dumps(info, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="softprompt", description="Prompt tuning and fine-tuning for Hugging Face encoders."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="show a prompt file's metadata and tensor sizes as JSON")
    p.add_argument("file", help="a prompt .safetensors file written by softprompt")
    p.set_defaults(func=_inspect)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``softprompt`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError, TypeError) as exc:
        print(f"softprompt {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
