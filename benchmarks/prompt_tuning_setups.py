"""The setups that ``prompt_tuning.py`` compares, one function each; each runs alone in its own process.

The driver runs ``python benchmarks/prompt_tuning.py --setup NAME --result-file F ...`` once per
setup, so every setup starts from a fresh interpreter and has its own peak resident memory. Each
setup also records the tokens and model FLOPs of its work (``model_flops``) and, for training, where
a step's time goes (``step_timing``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
import transformers
from child_process import peak_rss_mib
from model_flops import workload_flops
from step_timing import StepTimer, StepTimerCallback
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from workloads import WORKLOADS, Workload, digest, inputs, load_subset, real_lengths

# The chapter initialises its prompt with torch.randn scaled down; BERT's embedding LayerNorm
# follows, so the scale matters little. Drawn after the model is loaded, from the shared seed.
CHAPTER_INIT_STD = 0.5


@dataclass(frozen=True)
class BenchConfig:
    """What every setup shares: one model, one data subset, one recipe, one seed."""

    model: str  # folder of a transformers BERT-family model (config, weights, tokenizer)
    data: str  # folder with train.parquet and test.parquet (text, label columns)
    train_size: int
    test_size: int
    max_length: int  # prompted length, virtual tokens included (512: the chapter's)
    num_virtual_tokens: int
    batch_size: int
    epochs: int
    learning_rate: float
    seed: int
    workdir: str  # scratch space for Trainer output and saved artefacts
    workload: str = "imdb"  # a key of workloads.WORKLOADS: imdb (single texts) or sick (pairs)
    bf16: bool = False  # every setup in bf16: autocast (chapter, peft), a bf16 backbone (softprompt)
    repeats: int = 1  # train and predict this many times in the process; the median is reported

    @property
    def data_spec(self) -> Workload:
        return WORKLOADS[self.workload]

    @property
    def steps(self) -> int:
        """Optimizer steps, the same for every setup: whole batches per epoch (last one partial)."""
        return math.ceil(self.train_size / self.batch_size) * self.epochs

    @property
    def text_length(self) -> int:
        """Tokens of text that fit beside the virtual tokens."""
        return self.max_length - self.num_virtual_tokens


def _files_size(paths: list[Path]) -> dict[str, Any]:
    files = {p.name: p.stat().st_size for p in paths if p.is_file()}
    return {"bytes": sum(files.values()), "files": files}


def _trainable(params: Any) -> int:
    return sum(p.numel() for p in params if p.requires_grad)


def _load(
    cfg: BenchConfig, out: dict[str, Any], *, via_softprompt: bool = False
) -> tuple[datasets.Dataset, datasets.Dataset, Any, nn.Module]:
    """The shared subset, the tokenizer, and the model with the same random head in every setup."""
    spec = cfg.data_spec
    train, test = load_subset(
        spec, cfg.data, cfg.train_size, cfg.test_size, cfg.seed, via_softprompt=via_softprompt
    )
    out["subset_sha256"] = digest(train, test)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    transformers.set_seed(cfg.seed)  # the classifier (and any missing pooler) is drawn from this seed
    # a checkpoint's own classifier of another width (2 labels, SICK's 3) is replaced by a random one too
    model = AutoModelForSequenceClassification.from_pretrained(
        cfg.model, num_labels=spec.num_labels, ignore_mismatched_sizes=True
    )
    return train, test, tokenizer, model


def record_work(cfg: BenchConfig, out: dict[str, Any]) -> None:
    """Real tokens and model FLOPs of the training and the prediction: the same for every setup, however
    much it pads (each setup's own rows, tokenizer and model config, read again untimed)."""
    train, test = load_subset(cfg.data_spec, cfg.data, cfg.train_size, cfg.test_size, cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    config = transformers.AutoConfig.from_pretrained(cfg.model)
    n = cfg.num_virtual_tokens
    lengths = real_lengths(tokenizer, train, cfg.text_length, n)
    out["train"].update(workload_flops(config, lengths, passes=cfg.epochs))
    out["predict"].update(workload_flops(config, real_lengths(tokenizer, test, cfg.text_length, n)))


def _autocast(cfg: BenchConfig, device: torch.device) -> contextlib.AbstractContextManager[None]:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16)


def _accuracy(predicted: list[int], labels: list[int]) -> float:
    return sum(int(p == y) for p, y in zip(predicted, labels)) / len(labels)


# ---------------------------------------------------------------- 1. the chapter, as written


class ChapterPromptModel(nn.Module):
    """The chapter's model: N prompt vectors prepended to the token embeddings; BERT and head frozen."""

    def __init__(self, model: nn.Module, num_virtual_tokens: int) -> None:
        super().__init__()
        self.model = model
        for p in self.model.parameters():  # the randomly initialised classifier head too
            p.requires_grad = False
        hidden = model.config.hidden_size
        self.soft_prompt = nn.Parameter(torch.randn(num_virtual_tokens, hidden) * CHAPTER_INIT_STD)  # (N, E)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        embeds = self.model.get_input_embeddings()(input_ids)  # (B, T, E)
        b, n = embeds.shape[0], self.soft_prompt.shape[0]
        prompt = self.soft_prompt.unsqueeze(0).expand(b, -1, -1)  # (B, N, E)
        inputs_embeds = torch.cat([prompt, embeds], dim=1)  # (B, N + T, E)
        mask = torch.cat([attention_mask.new_ones(b, n), attention_mask], dim=1)  # (B, N + T)
        if token_type_ids is not None:  # pairs (not in the chapter): the prompt is segment 0, like [CLS]
            token_type_ids = torch.cat([token_type_ids.new_zeros(b, n), token_type_ids], dim=1)
        return self.model(
            inputs_embeds=inputs_embeds, attention_mask=mask, token_type_ids=token_type_ids
        ).logits


def run_chapter(cfg: BenchConfig, out: dict[str, Any]) -> None:
    train_rows, test_rows, tokenizer, model = _load(cfg, out)
    pairs = "text_pair" in train_rows.column_names  # the chapter is single-text; pairs go in as pairs
    prompted = ChapterPromptModel(model, cfg.num_virtual_tokens)
    # where Trainer would run the others
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    prompted.to(device)

    def encode(texts: Any, pair: Any = None) -> Any:  # every text padded to max_length - N
        return tokenizer(texts, pair, padding="max_length", truncation=True, max_length=cfg.text_length,
                         return_tensors="pt")  # fmt: skip

    def call(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with _autocast(cfg, device):
            return prompted(
                batch["input_ids"].to(device), batch["attention_mask"].to(device),
                batch["token_type_ids"].to(device) if pairs else None,
            ).float()  # fmt: skip

    start = time.perf_counter()
    enc = encode(list(train_rows["text"]), list(train_rows["text_pair"]) if pairs else None)
    keys = ["input_ids", "attention_mask", *(["token_type_ids"] if pairs else [])]
    train = torch.utils.data.TensorDataset(*(enc[k] for k in keys), torch.tensor(list(train_rows["label"])))
    out["train"]["tokenize_seconds"] = time.perf_counter() - start
    out["peak_rss_mib"]["loaded"] = peak_rss_mib()

    loader = torch.utils.data.DataLoader(
        train, batch_size=cfg.batch_size, shuffle=True, generator=torch.Generator().manual_seed(cfg.seed)
    )
    start = time.perf_counter()
    optimizer = torch.optim.AdamW([prompted.soft_prompt], lr=cfg.learning_rate)
    timer = StepTimer(prompted, [prompted.soft_prompt], optimizer)
    prompted.train()
    losses: list[float] = []
    timer.start()
    while len(losses) < cfg.steps:
        for *tensors, labels in loader:
            logits = call(dict(zip(keys, tensors)))
            loss = nn.functional.cross_entropy(logits, labels.to(device))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            timer.step_end()
            if len(losses) == cfg.steps:
                break
    out["train"]["seconds"] = time.perf_counter() - start
    out["train"]["steps"] = len(losses)
    out["train"]["mean_loss"] = sum(losses) / len(losses)
    out["train"]["step_breakdown"] = timer.summary()
    out["peak_rss_mib"]["trained"] = peak_rss_mib()

    prompted.eval()
    texts = inputs(test_rows)
    start = time.perf_counter()
    predicted = []
    with torch.no_grad():
        for text in texts:  # one text at a time, padded to max_length - N
            one = encode(*text) if pairs else encode(text)
            predicted.append(int(call(one).argmax(-1)))
    out["predict"]["seconds"] = time.perf_counter() - start
    out["accuracy"] = _accuracy(predicted, list(test_rows["label"]))
    out["peak_rss_mib"]["predicted"] = peak_rss_mib()

    out["trainable_parameters"] = _trainable(prompted.parameters())
    path = Path(cfg.workdir) / "chapter_prompt.pt"
    torch.save(prompted.soft_prompt.detach().cpu(), path)  # the chapter saves the prompt tensor alone
    out["artefact"] = _files_size([path])


# ---------------------------------------------------------------- 2. PEFT prompt tuning + Trainer


def _first(predictions: Any) -> Any:
    return predictions[0] if isinstance(predictions, tuple) else predictions


def run_peft(cfg: BenchConfig, out: dict[str, Any], *, tuned: bool = False) -> None:
    """PEFT prompt tuning with ``Trainer``; ``tuned``: configured for speed as far as flags and a sort go.

    Tuned is what a PEFT user who cares about speed can do without writing a kernel: length-grouped training
    batches (``train_sampling_strategy="group_by_length"``, one flag) and the test texts sorted by length
    before ``Trainer.predict`` (put back in order after), so each batch pads to its own longest text.
    """
    from peft import PromptTuningConfig, TaskType, get_peft_model

    train_rows, test_rows, tokenizer, model = _load(cfg, out)
    peft_model = get_peft_model(
        model, PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=cfg.num_virtual_tokens)
    )
    text_columns = [c for c in ("text", "text_pair") if c in train_rows.column_names]

    def encode(batch: dict[str, list[Any]]) -> Any:
        return tokenizer(batch["text"], batch.get("text_pair"), truncation=True, max_length=cfg.text_length)

    start = time.perf_counter()
    train = train_rows.map(encode, batched=True, remove_columns=text_columns)
    out["train"]["tokenize_seconds"] = time.perf_counter() - start
    out["peak_rss_mib"]["loaded"] = peak_rss_mib()

    # TrainingArguments' defaults except the shared recipe (lr, batch, steps, seed, bf16); no reporting
    # service and no checkpoint, which would only add time
    args = transformers.TrainingArguments(
        output_dir=str(Path(cfg.workdir) / "peft"),
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        max_steps=cfg.steps,
        seed=cfg.seed,
        bf16=cfg.bf16,
        **(
            {"use_cpu": True} if cfg.bf16 and not torch.cuda.is_available() else {}
        ),  # CPU autocast needs it said
        report_to="none",
        save_strategy="no",
        **({"train_sampling_strategy": "group_by_length"} if tuned else {}),
    )
    timer = StepTimer(peft_model, [p for p in peft_model.parameters() if p.requires_grad])
    start = time.perf_counter()
    trainer = transformers.Trainer(
        model=peft_model,
        args=args,
        train_dataset=train,
        data_collator=transformers.DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        callbacks=[StepTimerCallback(timer)],
    )
    result = trainer.train()
    out["train"]["seconds"] = time.perf_counter() - start
    out["train"]["steps"] = trainer.state.global_step
    out["train"]["mean_loss"] = result.training_loss
    out["train"]["step_breakdown"] = timer.summary()
    out["peak_rss_mib"]["trained"] = peak_rss_mib()

    start = time.perf_counter()  # texts to labels: the test set must be tokenized first
    test = test_rows.map(encode, batched=True, remove_columns=text_columns)
    out["predict"]["tokenize_seconds"] = time.perf_counter() - start
    order = list(range(len(test)))
    in_order, predictor = test, trainer
    if tuned:  # longest first, as softprompt batches: each batch pads to its own longest text
        order = sorted(order, key=lambda i: -len(test[i]["input_ids"]))
        test = test.select(order)
        # transformers 5.25: with train_sampling_strategy="group_by_length" the *evaluation* sampler groups by
        # length too, so Trainer.predict returns its rows in a shuffled order that no output records; a
        # Trainer without the flag predicts in dataset order (docs/benchmarks.md)
        predict_args = dataclasses.replace(args, train_sampling_strategy="random")
        predictor = transformers.Trainer(model=peft_model, args=predict_args, processing_class=tokenizer,
                                         data_collator=transformers.DataCollatorWithPadding(tokenizer))  # fmt: skip
    logits = _first(predictor.predict(test).predictions)  # (n, C), in ``order``
    if tuned:
        logits = logits[np.argsort(order)]  # back to the input order
        out["predict"]["seconds"] = time.perf_counter() - start  # the check below is not timed
        head = _first(predictor.predict(in_order.select(range(min(4, len(order))))).predictions)
        if not np.allclose(head, logits[: len(head)], atol=1e-3):  # unsorted right: row i is text i again
            raise RuntimeError("peft-tuned: the length-sorted predictions do not map back to their texts")
    if not tuned:
        out["predict"]["seconds"] = time.perf_counter() - start
    out["accuracy"] = _accuracy(logits.argmax(-1).tolist(), list(test_rows["label"]))
    out["peak_rss_mib"]["predicted"] = peak_rss_mib()

    out["trainable_parameters"] = _trainable(peft_model.parameters())
    folder = Path(cfg.workdir) / "peft_adapter"
    peft_model.save_pretrained(folder)
    out["artefact"] = _files_size(sorted(folder.iterdir()))


# ---------------------------------------------------------------- 3. softprompt, public API only


def run_softprompt(cfg: BenchConfig, out: dict[str, Any], *, bf16: bool = False, int8: bool = False) -> None:
    from softprompt import SoftPromptConfig, SoftPromptWrapper, tokenize_dataset, train_prompt

    bf16 = bf16 or cfg.bf16
    train_rows, test_rows, tokenizer, model = _load(cfg, out, via_softprompt=True)
    wrapper = SoftPromptWrapper(
        model, SoftPromptConfig(num_virtual_tokens=cfg.num_virtual_tokens), tokenizer=tokenizer
    )

    start = time.perf_counter()
    train = tokenize_dataset(
        train_rows, tokenizer, max_length=cfg.max_length, num_virtual_tokens=cfg.num_virtual_tokens
    )
    out["train"]["tokenize_seconds"] = time.perf_counter() - start
    out["peak_rss_mib"]["loaded"] = peak_rss_mib()

    timer = StepTimer(wrapper, [p for p in wrapper.parameters() if p.requires_grad])
    start = time.perf_counter()
    result = train_prompt(
        wrapper,
        train,
        output_dir=Path(cfg.workdir) / "softprompt",
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size,
        bf16=bf16,
        seed=cfg.seed,
        max_steps=cfg.steps,
        warmup_steps=0,  # the chapter's and PEFT's schedule, so the accuracy column compares equal recipes
        callbacks=[StepTimerCallback(timer)],
    )
    out["train"]["seconds"] = time.perf_counter() - start
    out["train"]["trainer_seconds"] = result.seconds  # Trainer.train alone, without setup and final save
    out["train"]["steps"] = next((e["step"] for e in reversed(result.log_history) if "step" in e), None)
    out["train"]["mean_loss"] = result.train_metrics.get("train_loss")
    out["train"]["step_breakdown"] = timer.summary()
    out["peak_rss_mib"]["trained"] = peak_rss_mib()

    start = time.perf_counter()
    if int8:  # inference-only int8 backbone; the quantization itself is timed with prediction
        wrapper.quantize_backbone()
    predictions = wrapper.predict(inputs(test_rows), max_length=cfg.max_length, bf16=bf16)
    out["predict"]["seconds"] = time.perf_counter() - start
    out["accuracy"] = _accuracy([p.label for p in predictions], list(test_rows["label"]))
    out["peak_rss_mib"]["predicted"] = peak_rss_mib()

    out["trainable_parameters"] = wrapper.num_trainable_parameters()
    out["artefact"] = _files_size([wrapper.save_prompt(Path(cfg.workdir) / "softprompt.safetensors")])


SETUPS = {
    "chapter": ("the chapter's recipe: pad to 512, fp32, plain loop, frozen random head, one text at a time", run_chapter),
    "peft": ("peft PromptTuningConfig(SEQ_CLS) + transformers.Trainer + DataCollatorWithPadding; Trainer.predict", run_peft),
    "peft-tuned": (
        "peft as above, tuned by flags: train_sampling_strategy='group_by_length', test texts sorted by length for Trainer.predict",
        lambda cfg, out: run_peft(cfg, out, tuned=True),
    ),
    "softprompt": ("softprompt defaults: SoftPromptWrapper + train_prompt; wrapper.predict", run_softprompt),
    "softprompt-bf16": (
        "softprompt, train_prompt(bf16=True): frozen backbone held in bf16",
        lambda cfg, out: run_softprompt(cfg, out, bf16=True),
    ),
    "softprompt-int8": (
        "softprompt defaults for training; wrapper.quantize_backbone() (int8 linear layers) for prediction",
        lambda cfg, out: run_softprompt(cfg, out, int8=True),
    ),
}  # fmt: skip


def compute_dtype(name: str, cfg: BenchConfig) -> str:
    """The dtype a setup's matmuls run in, whose GEMM peak its MFU is read against (int8 rows: fp32's)."""
    return "bf16" if cfg.bf16 or name == "softprompt-bf16" else "fp32"


def _median_of_repeats(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The last run's record, with each phase's seconds the median over the runs (all runs kept)."""
    out = runs[-1]
    for phase in ("train", "predict"):
        seconds = [r[phase]["seconds"] for r in runs]
        out[phase]["seconds"] = statistics.median(seconds)
        out[phase]["seconds_per_repeat"] = seconds
    out["accuracy_per_repeat"] = [r["accuracy"] for r in runs]
    return out


def run_setup(name: str, cfg: BenchConfig, result_file: str | os.PathLike[str]) -> None:
    """Run one setup in this process (``cfg.repeats`` times) and write its measurements to ``result_file``."""
    os.makedirs(cfg.workdir, exist_ok=True)
    if name == "warmup":  # fill the datasets cache and the page cache; nothing measured
        _load(cfg, {})
        load_subset(cfg.data_spec, cfg.data, cfg.train_size, cfg.test_size, cfg.seed, via_softprompt=True)
        Path(result_file).write_text("{}")
        return
    description, run = SETUPS[name]
    header: dict[str, Any] = {
        "setup": name,
        "description": description,
        "config": asdict(cfg),
        "compute_dtype": compute_dtype(name, cfg),
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    start_rss = peak_rss_mib()
    runs = []
    start = time.perf_counter()
    for _ in range(cfg.repeats):
        out: dict[str, Any] = {
            **header,
            "train": {"samples": cfg.train_size * cfg.epochs},  # every epoch sees every row once
            "predict": {"samples": cfg.test_size},
            "peak_rss_mib": {"start": start_rss},
        }
        run(cfg, out)
        runs.append(out)
    out = _median_of_repeats(runs) if len(runs) > 1 else runs[0]
    out["total_seconds"] = time.perf_counter() - start
    record_work(cfg, out)
    if torch.cuda.is_available():
        out["device"] = torch.cuda.get_device_name()
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    for phase in ("train", "predict"):
        out[phase]["samples_per_s"] = out[phase]["samples"] / out[phase]["seconds"]
    Path(result_file).write_text(json.dumps(out, indent=2))
