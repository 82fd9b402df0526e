"""The ``softprompt`` command: a thin argparse layer over the public API.

softprompt train --model M --data D --output-dir runs/pt      # prompt tuning, writes results.json
softprompt finetune --model M --data D --output-dir runs/ft   # full fine-tuning
softprompt eval --prompt runs/pt/prompt.safetensors --model M --data D --eval-size 1000
softprompt predict --prompt runs/pt/prompt.safetensors --model M "a great film"
softprompt inspect runs/pt/prompt.safetensors
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_run_flags", "build_parser", "main", "run_config_from_args"]

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
    """``--train-size all`` or a positive int."""
    if text.lower() in ("all", "none", "0"):
        return None
    value = int(text)
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
        "--lr", type=float, default=defaults["lr"], help="peak learning rate, AdamW (default: %(default)s)"
    )
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
        help="seed of the subsets, the initialisation and the batch order (default: %(default)s)",
    )
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
        deep=args.deep,
    )  # fmt: skip


def _run(args: argparse.Namespace) -> int:
    """``softprompt train`` and ``softprompt finetune``: one run, a summary, and where results.json is."""
    from softprompt.runs import run_finetune, run_prompt_tuning, summary

    run = run_finetune if args.command == "finetune" else run_prompt_tuning
    results = run(run_config_from_args(args))
    if results:  # rank 0 under torchrun
        print(summary(results))
        metric = f"eval_{results['metric']}"
        print(json.dumps({metric: results[metric], "results": str(Path(args.output_dir) / "results.json")}))
    return 0


def _load_for_inference(args: argparse.Namespace) -> tuple[Any, Any]:
    """A wrapper (``--prompt`` on ``--model``) or a fine-tuned model (``--model DIR`` alone)."""
    import transformers

    from softprompt.prompt_file import read_prompt_file
    from softprompt.quantize import quantize_linear_int8
    from softprompt.wrapper import SoftPromptWrapper

    if args.int8 and args.bf16:
        raise ValueError("--int8 and --bf16 exclude each other: pick one backbone precision")
    if args.prompt is None:
        from softprompt.finetune import load_finetuned

        model, tokenizer = load_finetuned(args.model)
        if args.int8:
            quantize_linear_int8(model.base_model)  # the head stays fp32
        return model, tokenizer
    tokenizer = transformers.AutoTokenizer.from_pretrained(args.model)
    pf = read_prompt_file(args.prompt)  # validated before the model is loaded
    kwargs: dict[str, Any] = {"num_labels": pf.num_labels, "id2label": pf.id2label} if pf.num_labels else {}
    if pf.task is not None:
        kwargs["problem_type"] = pf.task.problem_type
    # the head comes from the prompt file, so a checkpoint's head of another size is simply replaced
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        args.model, ignore_mismatched_sizes=True, **kwargs
    )
    wrapper = SoftPromptWrapper.from_prompt(model, args.prompt, tokenizer=tokenizer)
    return (wrapper.quantize_backbone() if args.int8 else wrapper), tokenizer


def _eval(args: argparse.Namespace) -> int:
    from softprompt import backbone
    from softprompt.atomic import atomic_write_json
    from softprompt.data import load_data
    from softprompt.evaluation import evaluate_model

    model, tokenizer = _load_for_inference(args)
    task = model.task if hasattr(model, "prompt_config") else backbone.sequence_task(model)
    names = args.label_names
    if names is None and task is not None and task.type.value != "regression":
        # the artefact's classes, in its id order: string labels map onto the ids it was trained with
        id2label = model.id2label if hasattr(model, "prompt_config") else model.config.id2label
        names = [str(id2label[i]) for i in sorted(id2label)]
    data = load_data(
        args.data, text_column=args.text_column, text_pair_column=args.text_pair_column,
        label_column=args.label_column, task=args.task or task, label_names=names, train_split=None,
        eval_split=args.eval_split, eval_size=args.eval_size, seed=args.seed, config_name=args.data_config,
    )  # fmt: skip
    metrics = evaluate_model(model, tokenizer, data.eval, batch_size=args.batch_size, max_length=args.max_length,
                             bf16=args.bf16, progress=True)  # fmt: skip
    result = {
        **metrics,
        "model": args.model,
        "prompt": args.prompt,
        "data": args.data,
        "eval_split": data.eval_split,
        "eval_size": args.eval_size,
        "seed": args.seed,
        "int8": args.int8,
    }
    if args.output_json:
        atomic_write_json(args.output_json, result)
    print(json.dumps(result, indent=2))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from softprompt.atomic import atomic_write_text
    from softprompt.inference import predict

    texts = list(args.texts)
    if args.file:
        texts += _read_texts(args.file)
    if not texts:
        raise ValueError("no texts: give them as arguments or with --file")
    model, tokenizer = _load_for_inference(args)
    if hasattr(model, "predict"):
        preds = model.predict(texts, batch_size=args.batch_size, max_length=args.max_length, bf16=args.bf16)
    else:
        temperature = float(getattr(model.config, "softprompt_temperature", 1.0) or 1.0)
        preds = predict(model, tokenizer, texts, batch_size=args.batch_size, max_length=args.max_length, bf16=args.bf16,
                        temperature=temperature)  # fmt: skip

    def shown(t: Any) -> dict[str, str]:
        return {"text": t[0], "text_pair": t[1]} if isinstance(t, tuple) else {"text": t}

    lines = "".join(json.dumps({**shown(t), **p.to_dict()}) + "\n" for t, p in zip(texts, preds))
    if args.output:
        atomic_write_text(args.output, lines)
    else:
        sys.stdout.write(lines)
    return 0


def _read_texts(path: str) -> list[Any]:
    """One text per line, or JSON lines with a ``text`` field (and ``text_pair`` for pair tasks)."""
    texts: list[Any] = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                row = json.loads(line)
                texts.append((row["text"], row["text_pair"]) if "text_pair" in row else row["text"])
            except (json.JSONDecodeError, KeyError) as exc:
                raise ValueError(f"{path}:{i}: not a JSON object with a 'text' field ({exc})") from exc
        else:
            texts.append(line)
    return texts


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
            **({"deep_prompts": list(pf.deep_prompts.shape)} if pf.deep_prompts is not None else {}),
            **{f"head.{k}": list(v.shape) for k, v in pf.head.items()},
        },
        "trainable_parameters": sum(
            t.numel() for t in (pf.prompt, pf.deep_prompts, *pf.head.values()) if t is not None
        ),
    }
    print(json.dumps(info, indent=2))
    return 0


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
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    p = add_run_flags(
        sub.add_parser(
            "train", help="prompt-tune a frozen encoder; writes prompt.safetensors and results.json"
        ),
        PROMPT_DEFAULTS,
    )
    p.set_defaults(func=_run)
    p = add_run_flags(
        sub.add_parser(
            "finetune", help="fine-tune a whole encoder; writes the model folder and results.json"
        ),
        FINETUNE_DEFAULTS,
    )
    p.set_defaults(func=_run)

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
    p.set_defaults(func=_eval)

    p = sub.add_parser("predict", help="predict labels for texts; JSON lines out")
    _inference_flags(p)
    p.add_argument("texts", nargs="*", help="texts to predict for")
    p.add_argument(
        "--file", help="a file of texts: one per line, or JSON lines with a 'text' (and 'text_pair') field"
    )
    p.add_argument("--output", help="write the JSON lines here instead of stdout")
    p.set_defaults(func=_predict)

    p = sub.add_parser("inspect", help="show a prompt file's metadata and tensor sizes as JSON")
    p.add_argument("file", help="a prompt .safetensors file written by softprompt")
    p.set_defaults(func=_inspect)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``softprompt`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError, TypeError, KeyError) as exc:
        print(f"softprompt {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
