"""The ``softprompt`` command: a thin argparse layer over the public API.

softprompt train --model M --data D --output-dir runs/pt      # prompt tuning, writes results.json
softprompt finetune --model M --data D --output-dir runs/ft   # full fine-tuning
softprompt eval --prompt runs/pt/prompt.safetensors --model M --data D --eval-size 1000
softprompt predict --prompt runs/pt/prompt.safetensors --model M "a great film"
softprompt inspect runs/pt/prompt.safetensors
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from softprompt import commands

__all__ = ["add_run_flags", "build_parser", "main", "report_errors", "run_config_from_args"]

PROMPT_DEFAULTS = {
    "model": None,
    "data": None,
    "train_size": None,
    "eval_size": None,
    "lr": 1e-2,
    "batch_size": 8,
    "output_dir": "runs/prompt_tune",
}
FINETUNE_DEFAULTS = {
    "model": None,
    "data": None,
    "train_size": None,
    "eval_size": None,
    "lr": 2e-5,
    "batch_size": 32,
    "output_dir": "runs/finetune",
}


def _size(text: str) -> int | None:
    """``--train-size all`` or a positive int (``0`` is an error, not "all")."""
    if text.lower() in ("all", "none"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number or 'all', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number or 'all', got {text!r}")
    return value


def add_run_flags(parser: argparse.ArgumentParser, defaults: dict[str, Any]) -> argparse.ArgumentParser:
    """The flags shared by ``softprompt train``, ``softprompt finetune`` and the examples."""
    g = parser.add_argument_group("run")
    g.add_argument("--model", default=defaults["model"], required=defaults["model"] is None,
                   help="Hub id or local folder of the encoder")  # fmt: skip
    _data_flags(parser, defaults)
    g.add_argument("--train-size", type=_size, default=defaults["train_size"],
                   help="random training rows to use, or 'all' (default: %(default)s = all)")  # fmt: skip
    g.add_argument("--eval-size", type=_size, default=defaults["eval_size"],
                   help="random evaluation rows to score, or 'all' (default: %(default)s = all)")  # fmt: skip
    g.add_argument("--epochs", type=float, default=3, help="training epochs (default: %(default)s)")
    g.add_argument(
        "--max-length",
        type=int,
        default=512,
        help="longest input in tokens, virtual tokens included (default: %(default)s)",
    )
    g.add_argument(
        "--num-virtual-tokens",
        type=int,
        default=20,
        help="soft prompt length; prompt tuning only (default: %(default)s)",
    )
    g.add_argument("--init", default="vocab", choices=["random", "vocab", "text", "labels"],
                   help="prompt initialisation; prompt tuning only (default: %(default)s)")  # fmt: skip
    g.add_argument(
        "--init-text", help="the words --init text starts the prompt from, e.g. 'classify the topic'"
    )
    g.add_argument(
        "--lr", type=float, default=defaults["lr"], help="peak learning rate, AdamW (default: %(default)s)"
    )
    g.add_argument("--head-lr", type=float, default=defaults.get("head_lr"),
                   help="prompt tuning: the head's own peak learning rate (default: --lr)")  # fmt: skip
    g.add_argument("--head-init", choices=["model", "zeros"], default=defaults.get("head_init", "model"),
                   help="'zeros': a head the checkpoint lacks starts with a zero output layer instead of a random "
                   "one (a trained head is kept); 'model': as from_pretrained made it (default: %(default)s)")  # fmt: skip
    g.add_argument("--warmup", type=float, default=defaults.get("warmup"),
                   help="linear warm-up: a fraction of the steps in [0, 1) or a number of steps (default: 0.1 for "
                   "prompt tuning, none for fine-tuning)")  # fmt: skip
    g.add_argument("--scheduler", default=defaults.get("scheduler", "linear"),
                   help="learning-rate schedule, a TrainingArguments lr_scheduler_type: linear, cosine, "
                   "constant... (default: %(default)s)")  # fmt: skip
    g.add_argument(
        "--batch-size",
        type=int,
        default=defaults["batch_size"],
        help="training batch size (default: %(default)s)",
    )
    g.add_argument(
        "--eval-batch-size",
        type=int,
        default=64,
        help="texts per forward pass when scoring (default: %(default)s)",
    )
    g.add_argument("--bf16", action="store_true", help="bf16: the frozen backbone held in bf16 (prompt tuning) or bf16 "
                   "autocast (fine-tuning); only where bf16 is native (GPUs, AVX-512 BF16/AMX CPUs): on AVX2-only "
                   "CPUs it is far slower than fp32")  # fmt: skip
    g.add_argument(
        "--deep",
        action="store_true",
        help="deep prompts: learned vectors at every layer's input; prompt tuning only",
    )
    g.add_argument(
        "--output-dir",
        default=defaults["output_dir"],
        help="artefact, checkpoints, results.json, curves.png (default: %(default)s)",
    )
    g.add_argument(
        "--seed",
        type=int,
        default=42,
        help="seed of the initialisation, the batch order and dropout, and of the subsets unless --data-seed "
        "is given (default: %(default)s)",
    )
    g.add_argument("--data-seed", type=int, help="seed of the --train-size/--eval-size subsets alone")
    g.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                   help="one run per seed into OUTPUT_DIR/seed-SEED, all on the subset of --data-seed (default: "
                   "--seed); prints and writes seeds.json: mean ± sd, min, max per epoch")  # fmt: skip
    g.add_argument("--resume", action="store_true",
                   help="continue the run in --output-dir from its newest complete checkpoint")  # fmt: skip
    g.add_argument("--overwrite", action="store_true",
                   help="start over in a used --output-dir (its checkpoints and results are removed)")  # fmt: skip
    g.add_argument("--deterministic", action="store_true",
                   help="deterministic kernels only (TrainingArguments full_determinism): needed for repeatable "
                   "runs on GPUs; on CPUs runs repeat without it")  # fmt: skip
    return parser


def _data_flags(parser: argparse.ArgumentParser, defaults: dict[str, Any]) -> None:
    """Where the data is and which columns and splits to use (train, finetune, eval)."""
    g = parser.add_argument_group("data")
    g.add_argument("--data", default=defaults.get("data"), required=defaults.get("data") is None,
                   help="a folder of split files (train.parquet, validation.csv, test.jsonl...), one such file, a "
                   "folder of <split>/<class>/*.txt files, or a Hub dataset name")  # fmt: skip
    g.add_argument(
        "--data-config", help="the Hub dataset's configuration, e.g. --data glue --data-config mrpc"
    )
    g.add_argument("--text-column", default="text", help="column of the (first) texts (default: %(default)s)")
    g.add_argument("--text-pair-column", help="column of the second texts: makes it a sentence-pair task")
    g.add_argument("--label-column", default="label", help="column of the labels (default: %(default)s)")
    g.add_argument("--task", choices=["classification", "multi-label", "regression"],
                   help="the task; default: inferred from the label column (and printed)")  # fmt: skip
    g.add_argument(
        "--label-names", nargs="+", help="class names in id order, for integer labels without names"
    )
    g.add_argument("--train-split", default="train", help="training split (default: %(default)s)")
    g.add_argument("--eval-split", default="auto",
                   help="evaluation split; 'auto' = validation if there is one, else test (default: %(default)s)")  # fmt: skip


def run_config_from_args(args: argparse.Namespace) -> Any:
    """A :class:`softprompt.runs.RunConfig` from parsed :func:`add_run_flags` flags."""
    from softprompt.runs import RunConfig

    return RunConfig(
        model=args.model, data=args.data, text_column=args.text_column, text_pair_column=args.text_pair_column,
        label_column=args.label_column, task=args.task, label_names=args.label_names, train_split=args.train_split,
        eval_split=args.eval_split, data_config=args.data_config, train_size=args.train_size,
        eval_size=args.eval_size, epochs=args.epochs, max_length=args.max_length,
        num_virtual_tokens=args.num_virtual_tokens, init=args.init, lr=args.lr, batch_size=args.batch_size,
        bf16=args.bf16, output_dir=args.output_dir, seed=args.seed, eval_batch_size=args.eval_batch_size,
        deep=args.deep, init_text=args.init_text, head_lr=args.head_lr, head_init=args.head_init, warmup=args.warmup,
        scheduler=args.scheduler, data_seed=args.data_seed, deterministic=args.deterministic,
        resume=args.resume, overwrite=args.overwrite,
    )  # fmt: skip


def _inference_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        required=True,
        help="the base model (Hub id or folder); with no --prompt, a fine-tuned model folder",
    )
    p.add_argument("--prompt", help="a prompt .safetensors file; omit to use a fine-tuned --model folder")
    p.add_argument(
        "--max-length",
        type=int,
        default=512,
        help="longest input in tokens, virtual tokens included (default: %(default)s)",
    )
    p.add_argument("--batch-size", type=int, default=64, help="texts per forward pass (default: %(default)s)")
    p.add_argument(
        "--bf16",
        action="store_true",
        help="bf16 inference (use the same setting as training to reproduce its numbers)",
    )
    p.add_argument(
        "--int8",
        action="store_true",
        help="CPU only: run the backbone's linear layers in int8 (dynamic quantization); faster, "
        "slightly approximate, so check the accuracy with `softprompt eval --int8`",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="softprompt", description="Prompt tuning and fine-tuning for Hugging Face encoders."
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log at INFO level; tracebacks on errors"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = add_run_flags(
        sub.add_parser(
            "train", help="prompt-tune a frozen encoder; writes prompt.safetensors and results.json"
        ),
        PROMPT_DEFAULTS,
    )
    p.set_defaults(func=commands.run)
    p = add_run_flags(
        sub.add_parser(
            "finetune", help="fine-tune a whole encoder; writes the model folder and results.json"
        ),
        FINETUNE_DEFAULTS,
    )
    p.set_defaults(func=commands.run)

    p = sub.add_parser(
        "eval", help="score a prompt (or fine-tuned model) on the same test subset `train` used"
    )
    _inference_flags(p)
    _data_flags(p, {})
    p.add_argument(
        "--eval-size", type=_size, default=None, help="random evaluation rows, as for train (default: all)"
    )
    p.add_argument(
        "--seed", type=int, default=42, help="seed of the subset, as for train (default: %(default)s)"
    )
    p.add_argument("--output-json", help="also write the metrics to this JSON file")
    p.set_defaults(func=commands.eval)

    p = sub.add_parser("predict", help="predict labels for texts; JSON lines out")
    _inference_flags(p)
    p.add_argument("texts", nargs="*", help="texts to predict for")
    p.add_argument(
        "--file", help="a file of texts: one per line, or JSON lines with a 'text' (and 'text_pair') field"
    )
    p.add_argument("--output", help="write the JSON lines here instead of stdout")
    p.set_defaults(func=commands.predict)

    p = sub.add_parser("inspect", help="show a prompt file's metadata and tensor sizes as JSON")
    p.add_argument("file", help="a prompt .safetensors file written by softprompt")
    p.set_defaults(func=commands.inspect)
    return parser


def report_errors(func: Callable[[], Any], prog: str, *, verbose: bool = False) -> int:
    """Run ``func()``; a user error becomes one line on stderr and exit status 2 (what ``softprompt`` does).

    For scripts built on the library, such as the examples::

        raise SystemExit(report_errors(main, "my_script.py"))
    """
    try:
        result = func()
        return int(result) if isinstance(result, int) else 0
    except BrokenPipeError:  # `... | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, OSError, TypeError, KeyError) as exc:  # OSError: a bad model path, an unwritable file
        if verbose:
            traceback.print_exc()
        message = " ".join(str(exc).split()) or type(exc).__name__  # one line
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``softprompt`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    return report_errors(lambda: args.func(args), f"softprompt {args.command}", verbose=args.verbose)


if __name__ == "__main__":
    raise SystemExit(main())
