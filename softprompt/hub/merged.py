"""Merge a prompt into a plain ``transformers`` model folder that runs without softprompt.

An input-only prompt sits at fixed columns of every input, so it can be written into the model
itself: K new vocabulary entries whose input embeddings are the prompt's ``(K, E)`` vectors, and a
tokenizer that inserts those K tokens where the wrapper splices the prompt
(:mod:`softprompt.hub.merged_tokenizer`). The trained head replaces the model's, the class names and
``problem_type`` go into ``config.json``, and a calibrated temperature is folded into the head's last
linear layer (its weight and bias divided by ``T``), so ``softmax(logits)`` is the wrapper's
calibrated confidence. Positions, segment ids and attention are then what the wrapper feeds the
model: the folder's logits are the wrapper's (checked to 1e-5 by the tests, in a process where
softprompt cannot be imported).

Layout (a standard Hugging Face model folder)::

    config.json              the base model's class and config; vocab_size + K; labels; "softprompt_export"
    model.safetensors        the weights, with the K prompt rows and the trained head
    tokenizer.json ...       the tokenizer, whose post-processor inserts <softprompt_0..K-1>
    generation_config.json   language models: the K prompt ids are suppressed (never generated)
    README.md                model card: how it was exported and how to load it

Deep prompts (vectors at every layer's input) cannot be expressed as input tokens and are refused.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from softprompt.core.config import Placement
from softprompt.core.constants import CARD_NAME, EXPORT_KEY
from softprompt.hub.merged_tokenizer import merged_tokenizer, prompt_tokens
from softprompt.models import backbone
from softprompt.models.heads import head_children
from softprompt.models.quantize import is_quantized
from softprompt.models.support import check_supported
from softprompt.utils.atomic import atomic_write_text, check_replaceable, replace_dir

if TYPE_CHECKING:
    from softprompt.models.slot import PromptSlot

__all__ = ["check_mergeable", "merged_model", "pipeline_task", "quiet_progress", "write_merged_folder"]

# the pipeline each head serves, by the model class's ending (a bare encoder: feature extraction)
_PIPELINES = {
    "ForSequenceClassification": "text-classification",
    "ForTokenClassification": "token-classification",
    "ForQuestionAnswering": "question-answering",
    "ForCausalLM": "text-generation",
    "LMHeadModel": "text-generation",
    "ForConditionalGeneration": "text2text-generation",
}


def pipeline_task(model: nn.Module) -> str:
    """The ``transformers.pipeline`` task that serves ``model``'s head.

    Examples:
        >>> pipeline_task(BertForSequenceClassification(config))  # doctest: +SKIP
        'text-classification'
    """
    name = type(model).__name__
    return next((task for suffix, task in _PIPELINES.items() if name.endswith(suffix)), "feature-extraction")


def check_mergeable(model: nn.Module, slot: PromptSlot) -> None:
    """Refuse, with the reason, a prompt that a plain model folder cannot hold exactly.

    Raises:
        ValueError: a deep prompt, or an int8-quantized backbone.
    """
    if slot.config.deep:
        raise ValueError(
            "a deep prompt adds vectors at every layer's input, which a plain model folder cannot hold (only input "
            "tokens can be merged); save it with save_pretrained and serve it with softprompt, or train an input-only "
            "prompt (deep=False) to export"
        )
    if is_quantized(getattr(model, "base_model", model)):
        raise ValueError(
            "the backbone is int8-quantized (quantize_backbone): export from an fp32 or bf16 backbone; quantize the "
            "exported ONNX model instead (export_onnx(..., quantize=True))"
        )


def _logit_layer(model: nn.Module, num_labels: int) -> nn.Linear:
    """The head's last linear layer: the one of the head children giving ``num_labels`` outputs."""
    found = [
        module
        for name in head_children(model)
        for module in getattr(model, name).modules()
        if isinstance(module, nn.Linear) and module.out_features == num_labels
    ]
    if len(found) != 1:
        raise ValueError(
            f"cannot fold the calibrated temperature into {type(model).__name__}'s head: {len(found)} linear layers give "
            f"{num_labels} outputs; export with temperature 1 (slot.temperature = 1.0) and divide the logits yourself"
        )
    return found[0]


def merged_model(model: nn.Module, slot: PromptSlot, *, first_id: int) -> nn.Module:
    """A copy of ``model`` holding ``slot``'s prompt as token rows ``first_id ..`` and its head, labels and temperature.

    ``model`` itself is not changed. Rows ``first_id .. first_id + K - 1`` of the input embeddings hold
    the prompt (divided by an embedding's own scale, BART's ``embed_scale``, so that looking them up
    gives the prompt's vectors); an untied output embedding gets zero rows there, and a language
    model's generation config suppresses them.

    Raises:
        ValueError: what :func:`check_mergeable` refuses; an embedding layer that does not give back the
            prompt's vectors for the new ids (checked); a temperature that cannot be folded.
    """
    check_mergeable(model, slot)
    merged = copy.deepcopy(model)
    merged._forward_hooks.clear()  # the wrapper's own (bf16 outputs cast up) are not the model's
    weight = merged.get_input_embeddings().weight  # (V, E)
    n, dtype = slot.prompt.shape[0], weight.dtype
    with torch.no_grad():
        params = dict(merged.named_parameters())
        for name, value in slot.head_params().items():  # the slot's trained head, by its name in the model
            params[name].copy_(value.detach().to(params[name].dtype))
        if slot.task is not None and slot.task.type.value == "classification" and slot.temperature != 1.0:
            layer = _logit_layer(merged, int(merged.config.num_labels))
            layer.weight.div_(slot.temperature)
            if layer.bias is not None:
                layer.bias.div_(slot.temperature)
        merged.resize_token_embeddings(first_id + n, mean_resizing=False)
        embeddings = merged.get_input_embeddings()
        scale = getattr(embeddings, "embed_scale", 1.0)
        scale = float(scale) if not isinstance(scale, torch.Tensor) else float(scale.item())
        embeddings.weight[first_id:] = (slot.vectors().detach().float() / scale).to(dtype)
        output = merged.get_output_embeddings()
        if output is not None and output.weight is not embeddings.weight:
            output.weight[first_id:] = 0
            if getattr(output, "bias", None) is not None:
                output.bias[first_id:] = 0
        looked_up = embeddings(torch.arange(first_id, first_id + n, device=weight.device)).float()  # (K, E)
        expected = slot.vectors().detach().float().to(looked_up.device)
        tolerance = (
            1e-6 * (1.0 + float(expected.abs().max()))
            if dtype == torch.float32
            else 1e-2 * (1.0 + float(expected.abs().max()))
        )
        if not torch.allclose(looked_up, expected, rtol=0, atol=tolerance):
            raise ValueError(
                f"{type(merged.get_input_embeddings()).__name__} does not give back the prompt's vectors for new token "
                "ids (it transforms its rows), so the prompt cannot be merged into this model"
            )
    if slot.id2label and not backbone.generates_text(model):
        merged.config.id2label = dict(slot.id2label)
        merged.config.label2id = {v: k for k, v in slot.id2label.items()}
    if slot.task is not None and slot.task.problem_type is not None:
        merged.config.problem_type = slot.task.problem_type
    generation = getattr(merged, "generation_config", None)
    if backbone.generates_text(model) and generation is not None:
        generation.suppress_tokens = sorted(
            set(generation.suppress_tokens or []) | set(range(first_id, first_id + n))
        )
    return merged.eval()


@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """No ``transformers`` progress bars (loading, saving shards) while the export runs; restored after."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


# pipelines transformers 5 removed, and the auto class the card shows instead
_NO_PIPELINE = {
    "question-answering": "AutoModelForQuestionAnswering",
    "text2text-generation": "AutoModelForSeq2SeqLM",
}


def _usage(model: nn.Module, task: str, loc: str) -> list[str]:
    """The card's code: a pipeline, or the ``AutoModelFor...`` class where ``transformers`` has no pipeline."""
    if task not in _NO_PIPELINE:
        return ["from transformers import pipeline", "", f"pipe = pipeline({json.dumps(task)}, model={loc})"]
    name = type(model).__name__
    auto = _NO_PIPELINE[task]
    return [
        f"from transformers import {auto}, AutoTokenizer",
        "",
        f"tokenizer = AutoTokenizer.from_pretrained({loc})  # inserts the prompt tokens",
        f"model = {auto}.from_pretrained({loc})  # {name}",
    ]


def _card(model: nn.Module, slot: PromptSlot, info: dict[str, Any], location: str) -> str:
    """The exported folder's model card."""
    task = pipeline_task(model)
    base = info.get("base_model") or "the base model"
    n = info["num_virtual_tokens"]
    where = "after the first token ([CLS]/BOS)" if info["insert_at"] else "before every other token"
    loc = json.dumps(str(location))
    lines = [
        "---",
        "library_name: transformers",
        f"pipeline_tag: {task}",
        "tags:",
        "- softprompt",
        "- prompt-tuning",
        "- merged-prompt",
        "---",
        "",
        "# A prompt merged into the model",
        "",
        f"Exported with softprompt {info['softprompt_version']} from prompt {json.dumps(info['prompt'])} trained on "
        f"{json.dumps(str(base))} (`{type(model).__name__}`). It runs with `transformers` alone.",
        "",
        "How it was exported:",
        "",
        f"- the prompt's {n} vectors are the input embeddings of {n} new tokens, `{prompt_tokens(1)[0]}` .. "
        f"`{prompt_tokens(n)[-1]}` (ids {info['first_token_id']} .. {info['first_token_id'] + n - 1});",
        f"- the tokenizer's post-processor inserts them {where}, for single texts and pairs, in the segment of "
        "their neighbour: the columns, positions and segments the prompt had in training;",
        f"- the head is the prompt's trained head; class names: {json.dumps(info.get('id2label') or {})};",
        f"- calibrated temperature {info['temperature']} "
        + (
            "folded into the head (softmax of the logits is the calibrated confidence);"
            if info["temperature_folded"]
            else "(not folded);"
        ),
        f"- the model's {info['max_positions']} positions include the {n} prompt tokens: with truncation the "
        f"tokenizer keeps {info['max_positions'] - n if info['max_positions'] else 'all but'} tokens of text "
        "and special tokens, as in training.",
        "",
        "```python",
        *_usage(model, task, loc),
        "```",
        "",
    ]
    if backbone.generates_text(model):
        lines[-1:-1] = [
            "The prompt tokens are suppressed in `generation_config.json`: they are never generated.",
            "",
        ]
    return "\n".join(lines)


def write_merged_folder(
    model: nn.Module,
    slot: PromptSlot,
    tokenizer: Any,
    folder: str | os.PathLike[str],
    *,
    name: str,
    special_ids: set[int],
    info: dict[str, Any],
    overwrite: bool = False,
    then: Callable[[Path], Any] | None = None,
) -> Path:
    """Write ``slot`` merged into ``model`` as a model folder (see the module docstring); returns the folder.

    The whole folder is written into a temporary sibling and moved into place at once: a failure
    leaves no half-written folder, and with ``overwrite`` the old folder is replaced only once the new
    one is complete.

    Args:
        model: The wrapped (frozen) model.
        slot: The prompt to merge.
        tokenizer: The wrapper's fast tokenizer.
        folder: The folder to create.
        name: The prompt's name (for the card).
        special_ids: Ids after which the wrapper places the prompt ([CLS], BOS).
        info: What the card and ``config.json``'s ``softprompt_export`` record about the prompt
            (``base_model``, ``softprompt_version``).
        overwrite: Replace an existing non-empty folder.
        then: Runs on the complete temporary folder before it is moved into place (the ONNX export).

    Raises:
        ValueError: a non-empty ``folder`` without ``overwrite``, a file in the way, or what
            :func:`merged_model` / :func:`~softprompt.hub.merged_tokenizer.merged_tokenizer` refuse.
    """
    target = check_replaceable(folder, overwrite=overwrite)
    check_mergeable(model, slot)
    if tokenizer is None:
        raise ValueError("a merged export writes the tokenizer too: pass tokenizer=... to SoftPromptWrapper")
    first_id = model.get_input_embeddings().weight.shape[0]
    n = slot.prompt.shape[0]
    tok, at = merged_tokenizer(
        tokenizer, num_virtual=n, first_id=first_id, special_ids=special_ids,
        after_cls=slot.config.placement is Placement.AFTER_CLS,
    )  # fmt: skip
    if check_supported(model).decoder_only and not backbone.generates_text(model):
        # a decoder classifier pools the last real token and numbers positions from the first column: padded
        # on the right, every row of a batch gets the positions it has alone, as the wrapper gives them
        tok.padding_side = "right"

    merged = merged_model(model, slot, first_id=first_id)
    limit = backbone.max_positions(model)
    record = {
        **info,
        "prompt": name,
        "num_virtual_tokens": n,
        "first_token_id": first_id,
        "insert_at": at,
        "placement": slot.config.placement.value,
        "task": None if slot.task is None else slot.task.type.value,
        "id2label": {str(k): v for k, v in (slot.id2label or {}).items()},
        "temperature": slot.temperature,
        "label_words": slot.config.label_words,
        "temperature_folded": slot.temperature != 1.0 and not backbone.generates_text(model),
        "max_positions": limit,
    }
    setattr(merged.config, EXPORT_KEY, record)

    def write(stage: Path) -> None:
        with quiet_progress():
            merged.save_pretrained(stage)
        tok.save_pretrained(stage)
        atomic_write_text(stage / CARD_NAME, _card(merged, slot, record, str(folder)))
        if then is not None:
            then(stage)

    return replace_dir(target, write, overwrite=overwrite)
