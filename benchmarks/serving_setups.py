"""The setups that ``serving.py`` compares, and the K tasks they serve; each setup runs in its own process.

A *task* is a prompt (or a PEFT adapter) with its own random start and its own random classifier head,
all on one MiniLM backbone. ``prepare`` writes K of them both ways (softprompt files, PEFT folders) and
the stream of texts with one task per text; a setup loads them, warms up, and predicts the stream.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers
from child_process import peak_rss_mib

__all__ = ["SETUPS", "ServeConfig", "prepare", "run_setup", "task_name"]


@dataclass(frozen=True)
class ServeConfig:
    """What every setup shares."""

    model: str  # a BERT-family model folder
    workdir: str  # where prepare() wrote the tasks and the stream
    k: int  # tasks served
    max_length: int  # prompted length, virtual tokens included
    num_virtual_tokens: int
    num_labels: int  # every task's (mixed batches need one width of logits)
    batch_size: int
    max_batch_tokens: int | None  # padded tokens per forward pass (None: no cap), the same for every setup

    @property
    def text_length(self) -> int:
        return self.max_length - self.num_virtual_tokens


def _base(cfg: ServeConfig, seed: int) -> torch.nn.Module:
    transformers.set_seed(seed)  # the task's random classifier head
    return transformers.AutoModelForSequenceClassification.from_pretrained(
        cfg.model, num_labels=cfg.num_labels, ignore_mismatched_sizes=True
    )


def task_name(i: int) -> str:
    return f"task{i}"


# ---------------------------------------------------------------- the tasks and the stream


def prepare(cfg: ServeConfig, texts: Sequence[str], ks: Sequence[int], seed: int) -> None:
    """Write ``max(ks)`` tasks as softprompt files and as PEFT adapter folders, and one stream per K.

    Task ``i`` draws its head from seed ``seed + i``: the softprompt file and the PEFT adapter of a task
    share that head; their prompts differ (softprompt's ``init="random"`` after ``[CLS]``, PEFT's random
    prompt before it), which changes no arithmetic.
    """
    from peft import PromptTuningConfig, TaskType, get_peft_model

    from softprompt import SoftPromptConfig, SoftPromptWrapper

    root = Path(cfg.workdir)
    tokenizer = transformers.AutoTokenizer.from_pretrained(cfg.model)
    for i in range(max(ks)):
        model = _base(cfg, seed + i)
        prompt = SoftPromptConfig(num_virtual_tokens=cfg.num_virtual_tokens, init="random", seed=seed + i)
        SoftPromptWrapper(model, prompt, tokenizer=tokenizer).save_prompt(
            root / "prompts" / f"{task_name(i)}.safetensors"
        )
        torch.manual_seed(seed + i)
        peft_config = PromptTuningConfig(
            task_type=TaskType.SEQ_CLS, num_virtual_tokens=cfg.num_virtual_tokens
        )
        get_peft_model(model, peft_config).save_pretrained(root / "adapters" / task_name(i))
    for k in ks:  # a random task per text, the same for every setup at this K
        rng = random.Random(seed + k)
        stream = {"texts": list(texts), "tasks": [rng.randrange(k) for _ in texts]}
        (root / f"stream-k{k}.json").write_text(json.dumps(stream))


# ---------------------------------------------------------------- batching (PEFT gets softprompt's)


def _length_batches(lengths: list[int], batch_size: int, max_tokens: int | None) -> list[list[int]]:
    """Rows longest first, at most ``batch_size`` rows and ``max_tokens`` padded tokens a batch: what
    ``softprompt.inference.length_batches`` does, copied so that the PEFT processes never import softprompt."""
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        batch = batches[-1] if batches else None
        if batch and len(batch) < batch_size and (max_tokens is None or (len(batch) + 1) * lengths[batch[0]] <= max_tokens):  # fmt: skip
            batch.append(i)
        else:
            batches.append([i])
    return batches


def _peft_logits(model: Any, tokenizer: Any, texts: list[str], cfg: ServeConfig) -> torch.Tensor:
    """A PEFT model's logits, computed the way ``softprompt.predict_logits`` computes its own:
    tokenized once, length-sorted batches, the same caps, ``inference_mode``."""
    device = next(model.parameters()).device
    encoded = tokenizer(texts, truncation=True, max_length=cfg.text_length)
    lengths = [len(ids) for ids in encoded["input_ids"]]
    out = torch.empty(len(texts), cfg.num_labels)
    with torch.inference_mode():
        for index in _length_batches(lengths, cfg.batch_size, cfg.max_batch_tokens):
            features = [{k: encoded[k][i] for k in encoded} for i in index]
            batch = {k: v.to(device) for k, v in tokenizer.pad(features, return_tensors="pt").items()}
            out[index] = model(**batch).logits.float().cpu()
    return out


def _by_task(tasks: list[int]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for row, task in enumerate(tasks):
        groups.setdefault(task, []).append(row)
    return groups


# ---------------------------------------------------------------- the setups


def _softprompt(cfg: ServeConfig, texts: list[str], tasks: list[int], *, mixed: bool) -> Any:
    from softprompt import SoftPromptWrapper, predict_logits

    tokenizer = transformers.AutoTokenizer.from_pretrained(cfg.model)
    model = _base(cfg, 0)  # the file's head replaces this one
    prompts = Path(cfg.workdir) / "prompts"
    wrapper = SoftPromptWrapper.from_prompt(
        model, prompts / f"{task_name(0)}.safetensors", tokenizer=tokenizer, name=task_name(0)
    )
    for i in range(1, cfg.k):
        wrapper.load_prompt(prompts / f"{task_name(i)}.safetensors", name=task_name(i))
    if torch.cuda.is_available():
        wrapper.cuda()
    options = {
        "batch_size": cfg.batch_size,
        "max_length": cfg.max_length,
        "max_batch_tokens": cfg.max_batch_tokens,
    }

    def run(rows: list[int]) -> torch.Tensor:
        if mixed:  # one stream, each row with its own prompt: mixed-prompt batches
            names = [task_name(tasks[r]) for r in rows]
            return predict_logits(wrapper, tokenizer, [texts[r] for r in rows], prompt_names=names, **options)
        logits = torch.empty(len(rows), cfg.num_labels)  # one task at a time, single-prompt batches
        for task, members in _by_task([tasks[r] for r in rows]).items():
            names = [task_name(task)] * len(members)
            logits[members] = predict_logits(
                wrapper, tokenizer, [texts[rows[m]] for m in members], prompt_names=names, **options
            )
        return logits

    return run


def _peft(cfg: ServeConfig, texts: list[str], tasks: list[int], *, shared: bool) -> Any:
    from peft import PeftModel

    tokenizer = transformers.AutoTokenizer.from_pretrained(cfg.model)
    adapters = Path(cfg.workdir) / "adapters"
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if shared:  # one base model, K adapters, switched per single-task group
        peft_model = PeftModel.from_pretrained(
            _base(cfg, 0), adapters / task_name(0), adapter_name=task_name(0)
        )
        for i in range(1, cfg.k):
            peft_model.load_adapter(adapters / task_name(i), adapter_name=task_name(i))
        models = {i: peft_model for i in range(cfg.k)}
    else:  # K separate models side by side, each with its own copy of the base
        models = {i: PeftModel.from_pretrained(_base(cfg, 0), adapters / task_name(i)) for i in range(cfg.k)}
    for model in {id(m): m for m in models.values()}.values():
        model.to(device).eval()

    def run(rows: list[int]) -> torch.Tensor:
        logits = torch.empty(len(rows), cfg.num_labels)
        for task, members in _by_task([tasks[r] for r in rows]).items():
            model = models[task]
            if shared:
                model.set_adapter(task_name(task))
            logits[members] = _peft_logits(model, tokenizer, [texts[rows[m]] for m in members], cfg)
        return logits

    return run


SETUPS = {
    "softprompt-mixed": ("one wrapper, K prompt slots; the stream as it comes, mixed-prompt batches (prompt_names per row)",
                         lambda cfg, texts, tasks: _softprompt(cfg, texts, tasks, mixed=True)),
    "softprompt-grouped": ("one wrapper, K prompt slots; the stream grouped by task, single-prompt batches",
                           lambda cfg, texts, tasks: _softprompt(cfg, texts, tasks, mixed=False)),
    "peft-switch": ("one base model, K PEFT adapters (load_adapter); grouped by task, set_adapter per group",
                    lambda cfg, texts, tasks: _peft(cfg, texts, tasks, shared=True)),
    "peft-separate": ("K PeftModels side by side, each on its own copy of the base; grouped by task",
                      lambda cfg, texts, tasks: _peft(cfg, texts, tasks, shared=False)),
}  # fmt: skip
WARMUP_ROWS = 8


def run_setup(name: str, cfg: ServeConfig, result_file: str) -> None:
    """Load the K tasks for ``name``, warm up, predict the stream, and write the figures to ``result_file``."""
    stream = json.loads((Path(cfg.workdir) / f"stream-k{cfg.k}.json").read_text())
    texts, tasks = stream["texts"], stream["tasks"]
    out: dict[str, Any] = {
        "setup": name,
        "description": SETUPS[name][0],
        "k": cfg.k,
        "rss_mib": {"start": peak_rss_mib()},
    }
    start = time.perf_counter()
    run = SETUPS[name][1](cfg, texts, tasks)
    out["load_seconds"] = time.perf_counter() - start
    out["rss_mib"]["loaded"] = peak_rss_mib()
    run(list(range(min(WARMUP_ROWS, len(texts)))))  # first calls allocate and pick kernels
    start = time.perf_counter()
    logits = run(list(range(len(texts))))
    out["predict_seconds"] = time.perf_counter() - start
    out["texts"] = len(texts)
    out["texts_per_s"] = len(texts) / out["predict_seconds"]
    out["rss_mib"]["predicted"] = peak_rss_mib()
    out["predicted"] = logits.argmax(-1).tolist()
    out["torch_threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
        out["device"] = torch.cuda.get_device_name()
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    Path(result_file).write_text(json.dumps(out))
