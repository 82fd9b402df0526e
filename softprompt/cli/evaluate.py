"""``softprompt eval``: score an artefact on the rows its run scored (the run's data settings, from its folder)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from softprompt.cli.loading import load_for_inference
from softprompt.utils.atomic import check_file_target

if TYPE_CHECKING:
    from softprompt.cli.command_args import EvalArgs

__all__ = ["evaluate", "with_run_settings"]

logger = logging.getLogger(__name__)


def evaluate(args: EvalArgs) -> int:
    """``softprompt eval``: score a prompt (or fine-tuned model) on a data set's evaluation split; prints JSON."""
    from softprompt.core.protocols import is_prompted
    from softprompt.data import load_data
    from softprompt.inference.dispatch import model_task
    from softprompt.inference.evaluate import evaluate_model
    from softprompt.tasks import family_for
    from softprompt.utils.atomic import atomic_write_json

    if args.output_json:  # before the evaluation, not after it
        check_file_target(args.output_json, "--output-json")
    args, run_config = with_run_settings(args)
    if args.data is None:
        raise ValueError(
            "--data is needed: no run_config.json beside the prompt (or model) says which data it used"
        )
    model, tokenizer = load_for_inference(args)
    task = model_task(model)
    names = args.label_names
    if names is None and task is not None and task.has_class_names:
        # the artefact's classes, in its id order: string labels map onto the ids it was trained with
        id2label = model.id2label if is_prompted(model) else model.config.id2label
        names = [str(id2label[i]) for i in sorted(id2label)]
    data = load_data(
        args.data, text_column=args.text_column, text_pair_column=args.text_pair_column,
        label_column=args.label_column, task=args.task or task, label_names=names,
        train_split=None if args.holdout is None else args.train_split,  # a holdout is carved from it
        tokens_column=args.tokens_column, tags_column=args.tags_column, question_column=args.question_column,
        context_column=args.context_column, answers_column=args.answers_column,
        eval_split=args.eval_split, eval_size=args.eval_size, seed=args.seed, config_name=args.data_config,
        holdout=args.holdout,
    )  # fmt: skip
    options = {"stride": args.doc_stride, "max_answer_length": args.max_answer_length}
    answers = {k: v for k, v in options.items() if k in family_for(data.task).predict_options}
    metrics = evaluate_model(model, tokenizer, data.eval, batch_size=args.batch_size, max_length=args.max_length,
                             bf16=args.bf16, progress=True, **answers)  # fmt: skip
    result = {
        **metrics,
        "model": args.model,
        "prompt": args.prompt,
        "data": args.data,
        "eval_split": data.eval_split,
        "eval_size": args.eval_size,
        "rows": len(data.eval),  # which rows were scored: this split, this many, drawn with this seed
        "seed": args.seed,
        "data_settings_from": run_config,
        "int8": args.int8,
    }
    if args.output_json:
        atomic_write_json(args.output_json, result)
    print(json.dumps(result, indent=2))
    return 0


# EvalArgs field -> the RunConfig field holding the run's value (``seed``: the run's data seed)
_RUN_DATA_FIELDS = ("data", "data_config", "text_column", "text_pair_column", "label_column", "tokens_column",
                    "tags_column", "question_column", "context_column", "answers_column", "doc_stride",
                    "max_answer_length", "task", "label_names", "train_split", "eval_split", "holdout", "eval_size",
                    "max_length")  # fmt: skip


def with_run_settings(args: EvalArgs) -> tuple[EvalArgs, str | None]:
    """``args`` with each data setting left at its default taken from the run's ``run_config.json`` (beside a
    local prompt file, in a prompt folder, or in a fine-tuned model folder), and that file's path (or ``None``).

    Where ``--eval-split`` is given, the run's ``eval_size`` and ``holdout`` are not taken: the split named is
    scored whole unless ``--eval-size`` says otherwise. A flag given on the command line wins even at its default
    value (``--eval-size all`` scores the run's own split whole).

    Raises:
        ValueError: an unreadable ``run_config.json``.
    """
    import dataclasses

    from softprompt.runs.config import RUN_CONFIG_FILE
    from softprompt.runs.config_file import read_config_file

    where = Path(args.prompt) if args.prompt else Path(args.model)
    folder = where if where.is_dir() else where.parent
    path = folder / RUN_CONFIG_FILE
    if not (where.exists() and path.is_file()):
        return args, None
    run = read_config_file(path)  # bounded, validated like --config
    defaults = {f.name: f.default for f in dataclasses.fields(args)}
    given = args.flags_given  # a flag given at its default value (--eval-size all) is still the user's

    def left_at_default(key: str) -> bool:
        return key not in given and getattr(args, key) == defaults[key]

    changes = {k: run[k] for k in _RUN_DATA_FIELDS if k in run and left_at_default(k)}
    if not left_at_default("eval_split"):
        # a split named here is scored whole (or --eval-size of it): the run's evaluation subset, or its
        # holdout, was a choice about the run's own split (1,000 of a validation split, say), not this one
        for key in ("eval_size", "holdout"):
            if changes.pop(key, None) is not None:
                logger.info(
                    "eval: --eval-split %s given, so the run's %s is not applied", args.eval_split, key
                )
    run_seed = run.get("data_seed") if run.get("data_seed") is not None else run.get("seed")
    if left_at_default("seed") and isinstance(run_seed, int):
        changes["seed"] = run_seed
    logger.info("eval: data settings %s from %s", sorted(changes), path)
    return dataclasses.replace(args, **changes), str(path)
