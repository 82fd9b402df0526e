"""What each ``softprompt`` subcommand does, on its parsed settings: run, eval, predict, inspect.

The flags live in :mod:`softprompt.cli.args`; each function here returns the exit status.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from softprompt.cli.evaluate import evaluate
from softprompt.cli.export import export_prompt
from softprompt.cli.loading import load_for_inference, prompt_path
from softprompt.utils.atomic import check_file_target
from softprompt.utils.inputs import parse_json

if TYPE_CHECKING:
    from softprompt.cli.command_args import InspectArgs, PredictArgs, PushArgs
    from softprompt.runs.config import RunConfig

logger = logging.getLogger(__name__)

__all__ = ["BY_COMMAND", "inspect_prompt", "predict_texts", "push_folder", "train"]


def train(cfg: RunConfig, *, finetune: bool = False, seeds: list[int] | None = None) -> int:
    """``softprompt train`` and ``softprompt finetune``: one run (or one per seed), a summary, and where
    the results are."""
    from softprompt.runs.recipes import run_finetune, run_prompt_tuning, summary

    run = run_finetune if finetune else run_prompt_tuning
    if seeds:
        from softprompt.runs.seeds import SUMMARY_FILE, format_seed_summary, run_seeds

        summary = run_seeds(cfg, seeds, run)
        if summary:  # rank 0 under torchrun
            print(format_seed_summary(summary))
            print(json.dumps({"seeds": str(Path(cfg.output_dir) / SUMMARY_FILE)}))
        return 0
    results = run(cfg)
    if results:  # rank 0 under torchrun
        print(summary(results))
        metric = f"eval_{results['metric']}"
        print(json.dumps({metric: results[metric], "results": str(Path(cfg.output_dir) / "results.json")}))
    return 0


def predict_texts(args: PredictArgs) -> int:
    """``softprompt predict``: predictions for texts or an ``--input`` table, as JSON lines."""
    from softprompt.stream.predict import prediction_dict
    from softprompt.utils.atomic import atomic_write_text

    if args.input is not None:
        return _predict_input(args)
    streaming = {"--text-column": args.text_column, "--text-pair-column": args.text_pair_column,
                 "--resume": args.resume, "--overwrite": args.overwrite}  # fmt: skip
    given = [flag for flag, value in streaming.items() if value]
    if given:
        raise ValueError(f"{given[0]} applies to --input (a table file); texts and --file take no columns")
    if args.output:
        check_file_target(args.output, "--output")
    texts = list(args.texts)
    if args.file:
        texts += _read_texts(args.file)
    if not texts:
        raise ValueError("no texts: give them as arguments, with --file, or a table with --input")
    preds = _predictor(args)[0](texts)

    def shown(t: Any) -> dict[str, str]:
        return {"text": t[0], "text_pair": t[1]} if isinstance(t, tuple) else {"text": t}

    lines = "".join(json.dumps({**shown(t), **prediction_dict(p)}) + "\n" for t, p in zip(texts, preds))
    if args.output:
        atomic_write_text(args.output, lines)
    else:
        sys.stdout.write(lines)
    return 0


def _predictor(args: PredictArgs) -> tuple[Callable[[list[Any]], list[Any]], bool]:
    """The loaded artefact as a function from inputs to predictions (on ``--device``), and whether it answers
    questions."""
    from softprompt.core.protocols import is_prompted
    from softprompt.inference.dispatch import model_task, predict
    from softprompt.tasks import family_for
    from softprompt.utils.sharding import Shard, shard_device

    device = shard_device(args.device, Shard.from_env())
    if args.int8 and device.type != "cpu":
        raise ValueError("--int8 runs on the CPU: drop it, or use --device cpu")
    model, tokenizer = load_for_inference(args)
    model.to(device)
    answers = family_for(model_task(model)).metrics_need_windows  # (question, context) pairs in, answers out
    options = {"batch_size": args.batch_size, "max_length": args.max_length, "bf16": args.bf16}
    if is_prompted(model):
        return (lambda texts: model.predict(texts, **options)), answers
    from softprompt.core.constants import TEMPERATURE_KEY

    temperature = float(getattr(model.config, TEMPERATURE_KEY, 1.0) or 1.0)
    return (lambda texts: predict(model, tokenizer, texts, temperature=temperature, **options)), answers


def _predict_input(args: PredictArgs) -> int:
    """``predict --input``: a table of any size, a chunk at a time (resumable, sharded under torchrun)."""
    from softprompt.stream.chunk_log import model_fingerprint
    from softprompt.stream.predict import predict_input
    from softprompt.utils.sharding import Shard, shard_device

    if args.texts or args.file:
        raise ValueError("--input excludes texts and --file: give one source of inputs")
    if args.int8 and args.bf16:
        raise ValueError("--int8 and --bf16 exclude each other: pick one backbone precision")
    prompt = prompt_path(args.prompt, args.revision) if args.prompt is not None else None
    settings = {**model_fingerprint(args.model, prompt), "revision": args.revision, "max_length": args.max_length,
                "batch_size": args.batch_size, "bf16": args.bf16, "int8": args.int8,
                "device": shard_device(args.device, Shard.from_env()).type}  # fmt: skip
    summary = predict_input(
        args.input, args.output, lambda: _predictor(args), settings, text_column=args.text_column,
        text_pair_column=args.text_pair_column, chunk_rows=args.chunk_rows, resume=args.resume,
        overwrite=args.overwrite,
    )  # fmt: skip
    if summary is not None and args.output:  # process 0; without --output the predictions are on stdout
        print(json.dumps(summary))
    return 0


def _read_texts(path: str) -> list[Any]:
    """One text per line, or JSON lines with a ``text`` field (and ``text_pair`` for pair tasks)."""
    texts: list[Any] = []
    try:
        content = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); convert it first"
        ) from exc
    for i, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            row = parse_json(line, f"{path}:{i}")
            try:
                if "question" in row:  # question answering: (question, context)
                    texts.append((row["question"], row["context"]))
                else:
                    texts.append((row["text"], row["text_pair"]) if "text_pair" in row else row["text"])
            except (KeyError, TypeError) as exc:
                raise ValueError(
                    f"{path}:{i}: not a JSON object with a 'text' field (or 'question' and 'context') ({exc})"
                ) from exc
        else:
            texts.append(line)
    return texts


def push_folder(args: PushArgs) -> int:
    """``softprompt push FOLDER --repo-id user/name``: the folder's prompt, model card and PEFT files, one commit."""
    import shutil
    import tempfile

    from softprompt.core.constants import CARD_NAME, PEFT_CONFIG_NAME, PEFT_WEIGHTS_NAME, PROMPT_NAME
    from softprompt.files.prompt_file import read_prompt_file
    from softprompt.hub.transport import upload_prompt_folder

    folder = Path(args.folder)
    if not folder.is_dir():
        raise ValueError(
            f"{args.folder!r} is not a folder: push a run's --output-dir or a save_pretrained folder"
        )
    for name in (PROMPT_NAME, CARD_NAME):
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"{args.folder!r} has no {name}: push a run's --output-dir or a folder written by "
                "wrapper.save_pretrained"
            )
    read_prompt_file(folder / PROMPT_NAME)  # a valid prompt, checked before anything is uploaded
    names = [PROMPT_NAME, CARD_NAME, *((PEFT_CONFIG_NAME, PEFT_WEIGHTS_NAME)
                                       if (folder / PEFT_CONFIG_NAME).is_file() else ())]  # fmt: skip
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise ValueError("push needs the network and HF_HUB_OFFLINE=1 is set: unset it to upload")
    with tempfile.TemporaryDirectory(
        prefix="softprompt-push-"
    ) as tmp:  # the prompt folder only, no checkpoints
        for name in names:
            shutil.copy2(folder / name, Path(tmp) / name)
        info = upload_prompt_folder(
            tmp, args.repo_id, private=args.private or None, revision=args.revision,
            commit_message=args.commit_message,
            delete_patterns=() if PEFT_CONFIG_NAME in names else (PEFT_CONFIG_NAME, PEFT_WEIGHTS_NAME),
        )  # fmt: skip
    print(json.dumps({"repo_id": args.repo_id, "commit": str(info), "files": names}))
    return 0


def inspect_prompt(args: InspectArgs) -> int:
    """``softprompt inspect``: a prompt file's metadata and tensor sizes as JSON."""
    from softprompt.files.prompt_file import read_prompt_file

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


# ``softprompt COMMAND`` -> the function that runs it (train and finetune: ``train``); named so that no
# function here shadows a builtin (``eval``) or a standard module (``inspect``)
BY_COMMAND: dict[str, Callable[[Any], int]] = {
    "eval": evaluate,
    "predict": predict_texts,
    "push": push_folder,
    "inspect": inspect_prompt,
    "export": export_prompt,
}
