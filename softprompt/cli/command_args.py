"""The settings of ``softprompt eval``, ``predict`` and ``inspect``: dataclasses whose fields are the flags.

``softprompt train|finetune`` take :class:`softprompt.RunConfig`'s fields; ``eval`` shares its data fields
(the same help, the same defaults), so a run and its evaluation read the data alike.

Examples:
    >>> args = PredictArgs(model="runs/ft", texts=["a fine film"])
    >>> args.batch_size, args.prompt
    (64, None)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from softprompt.runs.config import RunConfig
from softprompt.stream.input import DEFAULT_CHUNK_ROWS

__all__ = [
    "COMMAND_ARGS",
    "EvalArgs",
    "ExportArgs",
    "InferenceArgs",
    "InspectArgs",
    "PredictArgs",
    "PushArgs",
]


def _help(text: str, **more: Any) -> dict[str, Any]:
    return {"help": text, **more}


def _as_in_run(name: str) -> Any:
    """The :class:`RunConfig` field ``name`` as it is there: its default (or none: required) and its help."""
    run_field = RunConfig.__dataclass_fields__[name]
    return field(default=run_field.default, metadata=run_field.metadata)


@dataclass(kw_only=True)
class InferenceArgs:
    """What to load and how to run it: a prompt file on its base model, or a fine-tuned model folder."""

    model: str = field(
        metadata=_help("the base model (Hub id or folder); with no --prompt, a fine-tuned model folder")
    )
    prompt: str | None = field(
        default=None,
        metadata=_help(
            "a prompt: a .safetensors file, a folder written by save_pretrained or a run, or a Hub repo id "
            "(user/name); omit to use a fine-tuned --model folder"
        ),
    )
    revision: str | None = field(
        default=None, metadata=_help("Hub branch, tag or commit of a --prompt repo id (default: main)")
    )
    max_length: int = _as_in_run("max_length")
    batch_size: int = field(default=64, metadata=_help("texts per forward pass"))
    bf16: bool = field(
        default=False,
        metadata=_help("bf16 inference (use the same setting as training to reproduce its numbers)"),
    )
    int8: bool = field(
        default=False,
        metadata=_help(
            "CPU only: run the backbone's linear layers in int8 (dynamic quantization); faster, slightly "
            "approximate, so check the accuracy with `softprompt eval --int8`"
        ),
    )


@dataclass(kw_only=True)
class EvalArgs(InferenceArgs):
    """``softprompt eval``: score an artefact on the evaluation subset its run used (same data fields).

    Where the artefact's folder holds its run's ``run_config.json`` (a run's ``--output-dir``), every data
    setting left at its default here is the run's, the data seed included, so ``eval`` scores the rows the run
    scored; a setting given here wins (and the rows scored are printed either way). A split named with
    ``--eval-split`` is scored whole, not cut to the run's ``--eval-size``, unless ``--eval-size`` is given too.
    """

    data: str | None = field(
        default=None,
        metadata=_help(
            "the data: a Hub data set, a folder or a file (default: the run's, from run_config.json)"
        ),
    )
    data_config: str | None = _as_in_run("data_config")
    text_column: str = _as_in_run("text_column")
    text_pair_column: str | None = _as_in_run("text_pair_column")
    label_column: str = _as_in_run("label_column")
    tokens_column: str | None = _as_in_run("tokens_column")
    tags_column: str | None = _as_in_run("tags_column")
    question_column: str | None = _as_in_run("question_column")
    context_column: str | None = _as_in_run("context_column")
    answers_column: str | None = _as_in_run("answers_column")
    doc_stride: int | None = _as_in_run("doc_stride")
    max_answer_length: int = _as_in_run("max_answer_length")
    task: str | None = _as_in_run("task")
    label_names: list[str] | None = _as_in_run("label_names")  # noqa: RUF009 (a Field whose default is None)
    train_split: str = _as_in_run("train_split")
    eval_split: str = _as_in_run("eval_split")
    holdout: float | None = _as_in_run("holdout")
    eval_size: int | None = _as_in_run("eval_size")
    seed: int = field(
        default=42, metadata=_help("seed of the subset, as for train (its data seed; default: the run's)")
    )
    output_json: str | None = field(default=None, metadata=_help("also write the metrics to this JSON file"))
    # the flags given on the command line (set by the parser): one given at its default value, such as
    # ``--eval-size all``, still beats the run's setting
    flags_given: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)


@dataclass(kw_only=True)
class PredictArgs(InferenceArgs):
    """``softprompt predict``: labels (or values) for texts, as JSON lines."""

    texts: list[str] = field(default_factory=list, metadata=_help("texts to predict for", positional=True))
    file: str | None = field(
        default=None,
        metadata=_help(
            "a file of texts: one per line, or JSON lines with a 'text' (and 'text_pair') field, or 'question' "
            "and 'context' for question answering"
        ),
    )
    output: str | None = field(default=None, metadata=_help("write the JSON lines here instead of stdout"))
    input: str | None = field(
        default=None,
        metadata=_help(
            "a table of any size (.parquet, .jsonl or .csv), read, predicted and written a chunk at a time: "
            '{"row": i, ...} lines in input order; with --output, --resume continues a killed run, and under '
            "torchrun each process takes every N-th chunk"
        ),
    )
    text_column: str | None = field(
        default=None,
        metadata=_help("--input: the text column (default: text; question for question answering)"),
    )
    text_pair_column: str | None = field(
        default=None,
        metadata=_help(
            "--input: the second text of pairs (default: text_pair where the input has it; context for question "
            "answering)"
        ),
    )
    chunk_rows: int = field(
        default=DEFAULT_CHUNK_ROWS,
        metadata=_help(
            "--input: rows read, predicted and written at a time (memory grows with it; a killed run loses at most "
            "one chunk; sorting by length pays within a chunk)"
        ),
    )
    resume: bool = field(
        default=False,
        metadata=_help(
            "--input: continue --output after its last complete chunk; an error if the input or the settings changed"
        ),
    )
    overwrite: bool = field(default=False, metadata=_help("--input: replace an existing --output"))
    device: str = field(
        default="cpu",
        metadata=_help(
            "where the model runs: cpu, cuda or cuda:N (under torchrun, cuda is each process's own GPU)"
        ),
    )


@dataclass(kw_only=True)
class PushArgs:
    """``softprompt push``: upload a prompt folder (a run's, or save_pretrained's) to the Hugging Face Hub."""

    folder: str = field(
        metadata=_help("a folder holding prompt.safetensors and its README.md model card", positional=True)
    )
    repo_id: str = field(metadata=_help("the Hub repo to create or update, user/name"))
    revision: str | None = field(default=None, metadata=_help("branch to commit to (default: main)"))
    private: bool = field(default=False, metadata=_help("make a new repo private"))
    commit_message: str = field(default="Upload prompt with softprompt", metadata=_help("the commit's title"))


@dataclass(kw_only=True)
class InspectArgs:
    """``softprompt inspect``: a prompt file's metadata and tensor sizes as JSON."""

    file: str = field(metadata=_help("a prompt .safetensors file written by softprompt", positional=True))


@dataclass(kw_only=True)
class ExportArgs:
    """``softprompt export``: a prompt merged into a plain transformers model folder (and ONNX), no softprompt needed."""

    prompt: str = field(
        metadata=_help(
            "the prompt: a .safetensors file, a folder written by save_pretrained or a run, or a Hub repo id",
            positional=True,
        )
    )
    model: str = field(metadata=_help("the base model the prompt was trained on (Hub id or folder)"))
    output: str = field(metadata=_help("the folder to write (a standard Hugging Face model folder)"))
    format: str = field(
        default="transformers",
        metadata=_help(
            "transformers: the model folder; onnx: the same folder plus model.onnx",
            choices=["transformers", "onnx"],
        ),
    )
    quantize: bool = field(
        default=False, metadata=_help("with --format onnx: also write model_quantized.onnx (int8, dynamic)")
    )
    overwrite: bool = field(default=False, metadata=_help("replace a non-empty --output folder"))
    revision: str | None = field(
        default=None, metadata=_help("Hub branch, tag or commit of a prompt repo id (default: main)")
    )


COMMAND_ARGS: dict[str, type] = {
    "eval": EvalArgs,
    "export": ExportArgs,
    "inspect": InspectArgs,
    "predict": PredictArgs,
    "push": PushArgs,
}
