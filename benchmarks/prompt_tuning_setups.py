"""The setups that ``prompt_tuning.py`` compares, one function each; each runs alone in its own process.

The driver runs ``python benchmarks/prompt_tuning.py --setup NAME --result-file F ...`` once per
setup, so every setup starts from a fresh interpreter and has its own peak resident memory.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import resource
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import datasets
import torch
import transformers
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer

# The chapter initialises its prompt with torch.randn scaled down; BERT's embedding LayerNorm
# follows, so the scale matters little. Drawn after the model is loaded, from the shared seed.
CHAPTER_INIT_STD = 0.5
NUM_LABELS = 2  # IMDb: neg, pos


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

    @property
    def steps(self) -> int:
        """Optimizer steps, the same for every setup: whole batches per epoch (last one partial)."""
        return math.ceil(self.train_size / self.batch_size) * self.epochs

    @property
    def text_length(self) -> int:
        """Tokens of text that fit beside the virtual tokens."""
        return self.max_length - self.num_virtual_tokens


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _files_size(paths: list[Path]) -> dict[str, Any]:
    files = {p.name: p.stat().st_size for p in paths if p.is_file()}
    return {"bytes": sum(files.values()), "files": files}


def _trainable(params: Any) -> int:
    return sum(p.numel() for p in params if p.requires_grad)


def _subset(cfg: BenchConfig, *, via_softprompt: bool = False) -> tuple[datasets.Dataset, datasets.Dataset]:
    """The shared train and test rows (``text``, ``label``): ``split.shuffle(seed).select(range(n))``.

    That is what ``softprompt.load_data`` picks; the softprompt setup calls it, the
    others use ``datasets`` alone, so that they do not pay for importing softprompt. Every setup
    records a digest of its rows, and the driver checks that they agree.
    """
    if via_softprompt:
        from softprompt import load_data

        data = load_data(
            cfg.data,
            train_size=cfg.train_size,
            eval_split="test",
            eval_size=cfg.test_size,
            seed=cfg.seed,
            label_names=["neg", "pos"],
        )
        return data.train, data.eval
    files = {split: str(Path(cfg.data) / f"{split}.parquet") for split in ("train", "test")}
    splits = datasets.load_dataset("parquet", data_files=files)
    train, test = (splits[s].select_columns(["text", "label"]) for s in ("train", "test"))
    return (
        train.shuffle(seed=cfg.seed).select(range(cfg.train_size)),
        test.shuffle(seed=cfg.seed).select(range(cfg.test_size)),
    )


def _digest(*splits: datasets.Dataset) -> str:
    h = hashlib.sha256()
    for split in splits:
        for text, label in zip(split["text"], split["label"]):
            h.update(f"{int(label)}\t{text}\n".encode())
    return h.hexdigest()[:16]


def _load(
    cfg: BenchConfig, out: dict[str, Any], *, via_softprompt: bool = False
) -> tuple[datasets.Dataset, datasets.Dataset, Any, nn.Module]:
    """The shared subset, the tokenizer, and the model with the same random head in every setup."""
    train, test = _subset(cfg, via_softprompt=via_softprompt)
    out["subset_sha256"] = _digest(train, test)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    transformers.set_seed(cfg.seed)  # the classifier (and any missing pooler) is drawn from this seed
    model = AutoModelForSequenceClassification.from_pretrained(cfg.model, num_labels=NUM_LABELS)
    return train, test, tokenizer, model


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

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        embeds = self.model.get_input_embeddings()(input_ids)  # (B, T, E)
        b, n = embeds.shape[0], self.soft_prompt.shape[0]
        prompt = self.soft_prompt.unsqueeze(0).expand(b, -1, -1)  # (B, N, E)
        inputs_embeds = torch.cat([prompt, embeds], dim=1)  # (B, N + T, E)
        mask = torch.cat([attention_mask.new_ones(b, n), attention_mask], dim=1)  # (B, N + T)
        return self.model(inputs_embeds=inputs_embeds, attention_mask=mask).logits  # (B, C)


def run_chapter(cfg: BenchConfig, out: dict[str, Any]) -> None:
    train_rows, test_rows, tokenizer, model = _load(cfg, out)
    prompted = ChapterPromptModel(model, cfg.num_virtual_tokens)
    device = torch.device(
        "cuda" if torch.cuda.is_available() else "cpu"
    )  # where Trainer would run the others
    prompted.to(device)

    start = time.perf_counter()
    enc = tokenizer(
        list(train_rows["text"]),
        padding="max_length",
        truncation=True,
        max_length=cfg.text_length,
        return_tensors="pt",
    )  # every review padded to max_length - N
    train = torch.utils.data.TensorDataset(
        enc["input_ids"], enc["attention_mask"], torch.tensor(list(train_rows["label"]))
    )
    out["train"]["tokenize_seconds"] = time.perf_counter() - start
    out["peak_rss_mib"]["loaded"] = peak_rss_mib()

    loader = torch.utils.data.DataLoader(
        train, batch_size=cfg.batch_size, shuffle=True, generator=torch.Generator().manual_seed(cfg.seed)
    )
    start = time.perf_counter()
    optimizer = torch.optim.AdamW([prompted.soft_prompt], lr=cfg.learning_rate)
    prompted.train()
    losses: list[float] = []
    while len(losses) < cfg.steps:
        for input_ids, attention_mask, labels in loader:
            logits = prompted(input_ids.to(device), attention_mask.to(device))
            loss = nn.functional.cross_entropy(logits, labels.to(device))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            if len(losses) == cfg.steps:
                break
    out["train"]["seconds"] = time.perf_counter() - start
    out["train"]["steps"] = len(losses)
    out["train"]["mean_loss"] = sum(losses) / len(losses)
    out["peak_rss_mib"]["trained"] = peak_rss_mib()

    prompted.eval()
    texts = list(test_rows["text"])
    start = time.perf_counter()
    predicted = []
    with torch.no_grad():
        for text in texts:  # one review at a time, padded to max_length - N
            one = tokenizer(
                text, padding="max_length", truncation=True, max_length=cfg.text_length, return_tensors="pt"
            )
            logits = prompted(one["input_ids"].to(device), one["attention_mask"].to(device))
            predicted.append(int(logits.argmax(-1)))
    out["predict"]["seconds"] = time.perf_counter() - start
    out["accuracy"] = _accuracy(predicted, list(test_rows["label"]))
    out["peak_rss_mib"]["predicted"] = peak_rss_mib()

    out["trainable_parameters"] = _trainable(prompted.parameters())
    path = Path(cfg.workdir) / "chapter_prompt.pt"
    torch.save(prompted.soft_prompt.detach().cpu(), path)  # the chapter saves the prompt tensor alone
    out["artefact"] = _files_size([path])


# ---------------------------------------------------------------- 2. PEFT prompt tuning + Trainer


def run_peft(cfg: BenchConfig, out: dict[str, Any]) -> None:
    from peft import PromptTuningConfig, TaskType, get_peft_model

    train_rows, test_rows, tokenizer, model = _load(cfg, out)
    peft_model = get_peft_model(
        model, PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=cfg.num_virtual_tokens)
    )

    def encode(batch: dict[str, list[Any]]) -> Any:
        return tokenizer(batch["text"], truncation=True, max_length=cfg.text_length)

    start = time.perf_counter()
    train = train_rows.map(encode, batched=True, remove_columns=["text"])
    out["train"]["tokenize_seconds"] = time.perf_counter() - start
    out["peak_rss_mib"]["loaded"] = peak_rss_mib()

    # TrainingArguments' defaults except the shared recipe (lr, batch, steps, seed); no reporting
    # service and no checkpoint, which would only add time
    args = transformers.TrainingArguments(
        output_dir=str(Path(cfg.workdir) / "peft"),
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        max_steps=cfg.steps,
        seed=cfg.seed,
        report_to="none",
        save_strategy="no",
    )
    start = time.perf_counter()
    trainer = transformers.Trainer(
        model=peft_model,
        args=args,
        train_dataset=train,
        data_collator=transformers.DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
    )
    result = trainer.train()
    out["train"]["seconds"] = time.perf_counter() - start
    out["train"]["steps"] = trainer.state.global_step
    out["train"]["mean_loss"] = result.training_loss
    out["peak_rss_mib"]["trained"] = peak_rss_mib()

    start = time.perf_counter()  # texts to labels: the test set must be tokenized first
    test = test_rows.map(encode, batched=True, remove_columns=["text"])
    out["predict"]["tokenize_seconds"] = time.perf_counter() - start
    logits = trainer.predict(test).predictions
    logits = logits[0] if isinstance(logits, tuple) else logits  # (n, C)
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
    )
    out["train"]["seconds"] = time.perf_counter() - start
    out["train"]["trainer_seconds"] = result.seconds  # Trainer.train alone, without setup and final save
    out["train"]["steps"] = next((e["step"] for e in reversed(result.log_history) if "step" in e), None)
    out["train"]["mean_loss"] = result.train_metrics.get("train_loss")
    out["peak_rss_mib"]["trained"] = peak_rss_mib()

    start = time.perf_counter()
    if int8:  # inference-only int8 backbone; the quantization itself is timed with prediction
        wrapper.quantize_backbone()
    predictions = wrapper.predict(list(test_rows["text"]), max_length=cfg.max_length)
    out["predict"]["seconds"] = time.perf_counter() - start
    out["accuracy"] = _accuracy([p.label for p in predictions], list(test_rows["label"]))
    out["peak_rss_mib"]["predicted"] = peak_rss_mib()

    out["trainable_parameters"] = wrapper.num_trainable_parameters()
    out["artefact"] = _files_size([wrapper.save_prompt(Path(cfg.workdir) / "softprompt.safetensors")])


SETUPS = {
    "chapter": ("the chapter's recipe: pad to 512, fp32, plain loop, frozen random head, one text at a time", run_chapter),
    "peft": ("peft PromptTuningConfig(SEQ_CLS) + transformers.Trainer + DataCollatorWithPadding; Trainer.predict", run_peft),
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


def run_setup(name: str, cfg: BenchConfig, result_file: str | os.PathLike[str]) -> None:
    """Run one setup in this process and write its measurements to ``result_file`` as JSON."""
    os.makedirs(cfg.workdir, exist_ok=True)
    if name == "warmup":  # fill the datasets cache and the page cache; nothing measured
        _load(cfg, {})
        _subset(cfg, via_softprompt=True)
        Path(result_file).write_text("{}")
        return
    description, run = SETUPS[name]
    out: dict[str, Any] = {
        "setup": name,
        "description": description,
        "config": asdict(cfg),
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "train": {"samples": cfg.train_size * cfg.epochs},  # every epoch sees every review once
        "predict": {"samples": cfg.test_size},
        "peak_rss_mib": {"start": peak_rss_mib()},
    }
    start = time.perf_counter()
    run(cfg, out)
    out["total_seconds"] = time.perf_counter() - start
    if torch.cuda.is_available():
        out["device"] = torch.cuda.get_device_name()
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    for phase in ("train", "predict"):
        out[phase]["samples_per_s"] = out[phase]["samples"] / out[phase]["seconds"]
    Path(result_file).write_text(json.dumps(out, indent=2))
