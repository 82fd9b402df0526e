"""Does a DePT-style decomposition earn a place beside plain prompts? A prototype, measured before it is built.

DePT (Shi & Lipani, ICLR 2024) spends a prompt's parameter budget on a *shorter* prompt plus a
low-rank update of the input embeddings: every real token at input position ``t`` gets
``(A @ B)[t]`` added to its word embedding, ``A`` ``(s, r)`` with ``s`` the longest input and ``B``
``(r, E)``; ``B`` starts at zero (LoRA's initialisation), so step 0 is the plain prompt. The paper
trains ``A, B`` with their own, smaller learning rate.

This script runs one ordinary ``softprompt.runs.run_prompt_tuning`` with the offsets attached by a
forward hook on the model's input embeddings (the wrapper embeds real tokens with
``get_input_embeddings()`` before it splices the prompt in, so the hook sees exactly the real tokens,
right-padded: column = position) and their own AdamW group. The library does not save ``A, B``, so
the run keeps its last epoch (``load_best_model_at_end=False``) and the "reloaded" figure is the file's
prompt with the in-memory offsets, i.e. the trained pair. ``--rank 0`` runs the same code without
offsets: the baseline at the same prompt length and schedule.

Prints one JSON line: accuracy (or the metric of the task) per epoch and at the end, trainable values.

Example (``M`` the MiniLM folder; 10 tokens + rank 8 at 128 positions ~ the budget of 20 tokens)::

    python benchmarks/dept_probe.py --model $M --data ../shared/data/sick --text-column sentence_a \\
        --text-pair-column sentence_b --label-column label --max-length 128 --tokens 10 --rank 8 --seed 1
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile

import torch
from torch import nn

import softprompt.runs.recipes as recipes
from softprompt.runs.config import RunConfig
from softprompt.training.trainer import PromptTrainer


class EmbeddingOffsets(nn.Module):
    """``(s, E)`` position-wise offsets ``A @ B`` of rank ``r`` for the input embeddings of real tokens."""

    def __init__(self, positions: int, rank: int, width: int, seed: int) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed + 104729)
        bound = 1 / math.sqrt(rank)  # kaiming-uniform(a=sqrt(5)) as LoRA's A: U(-1/sqrt(fan_in), ...)
        self.a = nn.Parameter(torch.empty(positions, rank).uniform_(-bound, bound, generator=gen))  # (s, r)
        self.b = nn.Parameter(torch.zeros(rank, width))  # (r, E): offsets start at 0

    def hook(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        t = output.shape[1]
        if t > self.a.shape[0]:
            raise ValueError(f"input of {t} tokens, offsets for {self.a.shape[0]} positions")
        return output + (self.a[:t] @ self.b).to(output.dtype)  # (B, T, E) + (T, E)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--text-column", default="text")
    p.add_argument("--text-pair-column", default=None)
    p.add_argument("--label-column", default="label")
    p.add_argument("--task", default=None)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--train-size", type=int, default=None)
    p.add_argument("--eval-size", type=int, default=None)
    p.add_argument("--data-seed", type=int, default=42)
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--tokens", type=int, default=10, help="prompt length")
    p.add_argument("--rank", type=int, default=8, help="rank of the offsets; 0: none (the baseline)")
    p.add_argument("--offset-lr", type=float, default=1e-3, help="AdamW learning rate of A and B")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()

    work = tempfile.mkdtemp(prefix="dept-")
    offsets: list[EmbeddingOffsets] = []
    real_train = recipes.train_prompt

    seen: dict[str, int] = {}

    def train_prompt(wrapper, train, test, **kwargs):
        seen["prompt_values"] = wrapper.slot().prompt.numel()
        if args.rank:
            emb = wrapper.model.get_input_embeddings()
            width = emb.weight.shape[1]
            positions = args.max_length  # real tokens never exceed the longest input
            module = EmbeddingOffsets(positions, args.rank, width, args.seed)
            wrapper.add_module("dept_offsets", module)  # trainable: Trainer's optimizer sees it
            emb.register_forward_hook(module.hook)
            offsets.append(module)
        return real_train(wrapper, train, test, **kwargs)

    real_optimizer = PromptTrainer.create_optimizer

    def create_optimizer(self, model=None):  # A and B in a group of their own
        if self.optimizer is None and offsets:
            named = list((model or self.model).named_parameters())
            own = [q for n, q in named if n.startswith("dept_offsets.")]
            rest = [q for n, q in named if q.requires_grad and not n.startswith("dept_offsets.")]
            cls, kw = self.get_optimizer_cls_and_kwargs(self.args, model or self.model)
            kw.pop("lr", None)
            self.optimizer = cls(
                [{"params": rest, "lr": self.args.learning_rate, "weight_decay": 0.0},
                 {"params": own, "lr": args.offset_lr, "weight_decay": 0.0}],
                lr=self.args.learning_rate, **kw,
            )  # fmt: skip
        return real_optimizer(self, model)

    recipes.train_prompt = train_prompt
    PromptTrainer.create_optimizer = create_optimizer
    cfg = RunConfig(
        model=args.model, data=args.data, text_column=args.text_column, text_pair_column=args.text_pair_column,
        label_column=args.label_column, task=args.task, train_size=args.train_size, eval_size=args.eval_size,
        data_seed=args.data_seed, max_length=args.max_length, warmup=0.1, seed=args.seed, epochs=args.epochs,
        lr=args.lr, num_virtual_tokens=args.tokens, output_dir=f"{work}/run", overwrite=True,
        training_args={"load_best_model_at_end": False},
    )  # fmt: skip
    results = recipes.run_prompt_tuning(cfg)
    metrics = results["reloaded_eval_metrics"]
    key = "eval_accuracy" if "eval_accuracy" in metrics else "eval_pearson"
    extra = sum(q.numel() for m in offsets for q in m.parameters())
    print(json.dumps({
        "tokens": args.tokens, "rank": args.rank, "offset_lr": args.offset_lr, "lr": args.lr, "seed": args.seed,
        "train_size": args.train_size, "max_length": args.max_length, "metric": key, "final": metrics[key],
        "per_epoch": [e.get(key) for e in results.get("epochs", [])],
        "prompt_values": seen["prompt_values"], "offset_values": extra,
        "offset_norm": float((offsets[0].a @ offsets[0].b).detach().norm(dim=-1).mean()) if offsets else 0.0,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
