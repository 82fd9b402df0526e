"""The ``README.md`` model card that :meth:`~softprompt.SoftPromptWrapper.save_pretrained` writes beside a prompt.

YAML front matter the Hub reads (``library_name``, ``base_model``, ``tags``, ``pipeline_tag``), then
what the prompt is, the metrics of the run that made it, and how to load it with softprompt, PEFT and
plain ``safetensors``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from numbers import Real
from pathlib import Path

from huggingface_hub import ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id

from softprompt.core.config import Placement
from softprompt.core.constants import PROMPT_NAME
from softprompt.files.prompt_file import PromptFile
from softprompt.tasks import family_for
from softprompt.version import __version__

__all__ = ["Metrics", "check_metrics", "render_model_card"]

Metrics = Mapping[str, "float | int | str | bool"]

LIBRARY_NAME = "softprompt"
MAX_LABELS_SHOWN = 50  # a card listing 10,000 classes helps nobody
_PIPELINE_TAGS = {
    "ForSequenceClassification": "text-classification",
    "ForTokenClassification": "token-classification",
}


def check_metrics(metrics: object) -> dict[str, float | int | str | bool]:
    """A flat ``{name: number or text}`` mapping, checked (``None`` gives ``{}``).

    Raises:
        TypeError: not a mapping, a key that is not a string, or a value that is not a number or a string
            (a nested mapping: pass the inner one, e.g. ``results["eval_metrics"]``).

    Examples:
        >>> check_metrics({"eval_accuracy": 0.87, "epoch": 3})
        {'eval_accuracy': 0.87, 'epoch': 3}
    """
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a mapping of name to value, got {type(metrics).__name__}")
    out: dict[str, float | int | str | bool] = {}
    for key, value in metrics.items():
        if not isinstance(key, str):
            raise TypeError(f"metric names must be strings, got {key!r}")
        if not isinstance(value, (Real, str)):
            raise TypeError(
                f"metric {key!r} must be a number or a string, got {type(value).__name__}; "
                "pass a flat mapping such as results['eval_metrics']"
            )
        out[key] = value if isinstance(value, (str, bool, int)) else float(value)
    return out


def _hub_model_id(name: str) -> str | None:
    """``name`` if it reads as a Hub model id and is not a local path, else ``None`` (the Hub rejects paths)."""
    if not name or os.path.exists(name):
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def _line(text: object) -> str:
    """Text on one Markdown line: every line break Python knows (``\\r``, U+2028, U+0085...) becomes a space."""
    return " ".join(str(text).splitlines())


def _cell(text: object) -> str:
    """Text safe inside a Markdown table cell: one line, its pipes and backslashes escaped."""
    return _line(text).replace("\\", "\\\\").replace("|", "\\|")


def _literal(text: object) -> str:
    """A Python string literal of ``text`` for the card's code (JSON's escapes are Python's too): a quote or a
    line break in a model name or path cannot end the string, so copying the example never runs anything else.

    Examples:
        >>> _literal('a"b')
        '"a\\\\"b"'
    """
    return json.dumps(str(text))


def _number(value: float | int | str | bool) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    return str(value)


def _auto_class(model_class: str) -> str:
    """``BertForSequenceClassification`` -> ``AutoModelForSequenceClassification``; a bare encoder -> ``AutoModel``."""
    return "AutoModel" + model_class[model_class.index("For") :] if "For" in model_class else "AutoModel"


def _front_matter(pf: PromptFile, model_class: str, peft_written: bool) -> str:
    tags = [LIBRARY_NAME, "prompt-tuning", "soft-prompt"]
    if pf.config.deep:
        tags.append("deep-prompt")
    if peft_written:
        tags.append("peft")
    if pf.task is not None:
        tags.append(pf.task.type.value)
    suffix = model_class[model_class.index("For") :] if "For" in model_class else ""
    pipeline_tag = _PIPELINE_TAGS.get(suffix) or (None if suffix else "feature-extraction")
    data = ModelCardData(
        library_name=LIBRARY_NAME,
        base_model=_hub_model_id(pf.base_model),
        tags=tags,
        pipeline_tag=pipeline_tag,
    )
    return f"---\n{data.to_yaml()}\n---\n"


def _task_line(pf: PromptFile) -> str:
    if pf.task is None:
        return "none (features of a bare encoder)" if pf.num_labels is None else f"{pf.num_labels} outputs"
    labels = f", {pf.num_labels} {'output' if pf.num_labels == 1 else 'labels'}" if pf.num_labels else ""
    return f"{pf.task.type.value}{labels}"


def _labels_line(pf: PromptFile) -> str:
    if not pf.id2label:
        return "none"
    items = sorted(pf.id2label.items())
    shown = ", ".join(f"{i}: {name}" for i, name in items[:MAX_LABELS_SHOWN])
    more = f", ... ({len(items) - MAX_LABELS_SHOWN} more)" if len(items) > MAX_LABELS_SHOWN else ""
    return shown + more


def _example(pf: PromptFile) -> list[str]:
    """A ``predict`` line that fits the prompt's task (nothing for a bare model)."""
    if pf.task is None:
        return []
    return [family_for(pf.task).example_call]


def render_model_card(
    pf: PromptFile,
    *,
    model_class: str,
    location: str,
    from_hub: bool = False,
    metrics: Metrics | None = None,
    peft_written: bool = False,
    peft_note: str | None = None,
) -> str:
    """The model card (Markdown with YAML front matter) of the prompt in ``pf``.

    Args:
        pf: The prompt, as :meth:`~softprompt.SoftPromptWrapper.prompt_file` gives it.
        model_class: Class name of the wrapped model (``"BertForSequenceClassification"``).
        location: Where readers load it from: a Hub repo id or a folder.
        from_hub: ``location`` is a Hub repo id.
        metrics: Metrics of the run that made it (see :func:`check_metrics`).
        peft_written: Whether PEFT's ``adapter_config.json`` and ``adapter_model.safetensors`` are beside it.
        peft_note: Why they are not (shown when ``peft_written`` is false).

    Returns:
        The card's text.

    Examples:
        >>> card = render_model_card(wrapper.prompt_file(), model_class="BertForSequenceClassification",
        ...                          location="me/sentiment-prompt")  # doctest: +SKIP
    """
    metrics = check_metrics(metrics)
    base = _line(pf.base_model or "<base model>")
    cfg = pf.config
    where = "before [CLS]" if cfg.placement is Placement.PREPEND else "after [CLS]"
    later = (pf.num_layers or 1) - 1
    deep = (
        f"yes, vectors at the input of {later} later layer{'s' if later != 1 else ''} too" if later else "no"
    )
    head = ("yes, trained" if cfg.train_head else "yes, the model's own (frozen)") if pf.head else "none"
    files = "`prompt.safetensors`" + (
        " + PEFT `adapter_config.json`, `adapter_model.safetensors`" if peft_written else ""
    )
    rows = [
        ("base model", f"`{base}` ({pf.model_type or 'unknown type'}, {model_class})"),
        ("task", _task_line(pf)),
        ("labels", _labels_line(pf)),
        ("virtual tokens", f"{cfg.num_virtual_tokens}, {where}"),
        ("deep prompt", deep),
        ("task head saved with the prompt", head),
        ("softmax temperature", _number(float(pf.temperature))),
        ("files", files),
        ("written by", f"softprompt {__version__}"),
    ]
    lines = [_front_matter(pf, model_class, peft_written), f"# Soft prompt for {base}", ""]
    lines += [
        f"A soft prompt trained with softprompt on the frozen `{base}`, with its task head. The backbone is "
        "not in this folder: load it from its own source, then add the prompt.",
        "",
        "| | |",
        "| --- | --- |",
        *(f"| {_cell(k)} | {_cell(v)} |" for k, v in rows),
        "",
        "## Metrics",
        "",
    ]
    if metrics:
        lines += ["| metric | value |", "| --- | --- |"]
        lines += [f"| {_cell(k)} | {_cell(_number(v))} |" for k, v in metrics.items()]
    else:
        lines.append("No metrics were recorded with this prompt.")
    auto = _auto_class(model_class)
    labels = f", num_labels={pf.num_labels}" if pf.num_labels else ""
    lines += [
        "",
        "## Use with softprompt",
        "",
        "```python",
        f"from transformers import {auto}, AutoTokenizer",
        "from softprompt import SoftPromptWrapper",
        "",
        f"model = {auto}.from_pretrained({_literal(pf.base_model or base)}{labels})",
        f"tokenizer = AutoTokenizer.from_pretrained({_literal(pf.base_model or base)})",
        f"wrapper = SoftPromptWrapper.from_pretrained(model, {_literal(location)}, tokenizer=tokenizer)",
        *_example(pf),
        "```",
        "",
        "## Use with PEFT",
        "",
    ]
    if peft_written:
        lines += [
            "The same prompt and head as a PEFT prompt-tuning adapter (same logits as softprompt):",
            "",
            "```python",
            "from peft import PeftModel",
            "",
            f"peft_model = PeftModel.from_pretrained(model, {_literal(location)})",
            "```",
        ]
    else:
        lines.append(f"No PEFT adapter: {(peft_note or 'not written').rstrip('.')}.")
    lines += [
        "",
        "## Use with plain safetensors",
        "",
        "`prompt.safetensors` needs nothing but `safetensors` to read: the prompt vectors, the head's tensors "
        "(`head.<parameter name>`) and, in its metadata, everything above (`config`, `id2label`, `task`).",
        "",
        "```python",
        *(["from huggingface_hub import hf_hub_download"] if from_hub else []),
        "from safetensors import safe_open",
        "",
        f"path = hf_hub_download({_literal(location)}, {_literal(PROMPT_NAME)})"
        if from_hub
        else f"path = {_literal(Path(location) / PROMPT_NAME)}",
        'with safe_open(path, framework="pt") as f:',
        "    meta = f.metadata()",
        '    prompt = f.get_tensor("prompt_embeddings")  # (num_virtual_tokens, embedding_dim)',
        '    head = {k[len("head."):]: f.get_tensor(k) for k in f.keys() if k.startswith("head.")}',
        "```",
        "",
        f"Splice `prompt` into the input embeddings {where}, with attention-mask ones and segment 0, and load "
        "`head` into the model (`model.load_state_dict(head, strict=False)`).",
    ]
    if later:
        lines.append(
            'A deep prompt also holds `f.get_tensor("deep_prompts")`, `(layers - 1, num_virtual_tokens, '
            "hidden_size)`: at the input of each later layer they replace the hidden states of the virtual "
            "positions, which takes hooks on the layers; softprompt does that for you."
        )
    lines.append("")
    return "\n".join(lines)
