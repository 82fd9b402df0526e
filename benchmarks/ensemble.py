"""Prompt ensembles (Lester et al. 2021) against the best single prompt, on one frozen backbone.

Two ways to get the prompts:

* ``--prompt FILE`` (repeatable): ensemble prompt files you trained (for example the input-only
  and deep prompts of docs/results.md);
* ``--train-seeds 1 2 3 [--deep]``: train one prompt per seed here first, the same way but for the
  seed (initialisation and batch order): the setting of Lester et al. (small runs).

Every test review runs once per prompt in the same mixed-prompt batches (one backbone pass per
batch, ``softprompt.predict_logits(..., prompt_names=...)``). Each single prompt's accuracy and the
ensemble's (mean of the prompts' softmax probabilities) come from those same logits, and a check
confirms that ``wrapper.predict(texts, prompts=names)`` (the public API) gives the same labels.

    python benchmarks/ensemble.py --model M --data ../shared/data/imdb --eval-size 1000 --max-length 256 \\
        --prompt runs/prompt_tune/prompt.safetensors --prompt runs/deep/prompt.safetensors \\
        --out benchmarks/results/ensemble-2k.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
import transformers

from softprompt import (
    SoftPromptConfig,
    SoftPromptWrapper,
    load_data,
    predict_logits,
    read_prompt_file,
    tokenize_dataset,
    train_prompt,
)
from softprompt.utils.atomic import atomic_write_json


def _train(args: argparse.Namespace, model: torch.nn.Module, tok: object) -> list[Path]:
    data = load_data(
        args.data, train_size=args.train_size, eval_size=None, seed=args.seed, label_names=["neg", "pos"]
    )
    train = tokenize_dataset(data.train, tok, max_length=args.max_length, num_virtual_tokens=20)
    paths = []
    for seed in args.train_seeds:
        config = SoftPromptConfig(num_virtual_tokens=20, seed=seed, deep=args.deep)
        wrapper = SoftPromptWrapper(model, config, tokenizer=tok)
        result = train_prompt(
            wrapper, train, output_dir=Path(args.workdir) / f"seed{seed}", num_train_epochs=args.epochs,
            seed=seed, disable_tqdm=True,
        )  # fmt: skip
        paths.append(result.prompt_path)
    return paths


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="base model folder or Hub id")
    p.add_argument("--data", required=True, help="dataset folder or Hub name, as for `softprompt train`")
    p.add_argument("--prompt", action="append", default=[], help="a prompt file to ensemble (repeat)")
    p.add_argument("--train-seeds", type=int, nargs="*", default=[], help="train one prompt per seed first")
    p.add_argument("--train-size", type=int, default=500, help="training reviews for --train-seeds")
    p.add_argument("--epochs", type=float, default=3, help="epochs for --train-seeds")
    p.add_argument("--deep", action="store_true", help="--train-seeds trains deep prompts")
    p.add_argument("--eval-size", type=int, default=1000, help="random test reviews (subset seed: --seed)")
    p.add_argument("--max-length", type=int, default=256, help="tokens per review, virtual tokens included")
    p.add_argument("--seed", type=int, default=42, help="seed of the data subsets, as for `softprompt train`")
    p.add_argument("--workdir", default="runs/ensemble", help="where --train-seeds runs write")
    p.add_argument("--out", required=True, help="JSON file for the results")
    args = p.parse_args()
    if bool(args.prompt) == bool(args.train_seeds) or len(args.prompt or args.train_seeds) < 2:
        p.error("give at least two --prompt files, or at least two --train-seeds (not both)")

    tok = transformers.AutoTokenizer.from_pretrained(args.model)
    files = [read_prompt_file(f) for f in args.prompt]  # validated before the model loads
    labels_kw = (
        {"num_labels": files[0].num_labels, "id2label": files[0].id2label} if files else {"num_labels": 2}
    )
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(args.model, **labels_kw)
    paths = [Path(f) for f in args.prompt] or _train(args, model, tok)

    names = [f"p{i}" for i in range(len(paths))]
    wrapper = SoftPromptWrapper.from_prompt(model, paths[0], tokenizer=tok, name=names[0])
    for name, path in zip(names[1:], paths[1:]):
        wrapper.load_prompt(path, name=name)
    data = load_data(
        args.data,
        train_split=None,
        eval_split="test",
        eval_size=args.eval_size,
        seed=args.seed,
        label_names=["neg", "pos"],
    )
    texts, labels = list(data.eval["text"]), torch.tensor(data.eval["label"])
    k = len(names)

    start = time.perf_counter()
    logits = predict_logits(
        wrapper,
        tok,
        [t for t in texts for _ in range(k)],
        prompt_names=names * len(texts),
        max_length=args.max_length,
        batch_size=64,
        progress=True,
    ).view(len(texts), k, -1)  # fmt: skip  (n, k, C): every text under every prompt
    seconds = time.perf_counter() - start
    temps = torch.tensor([wrapper.prompts[n].temperature for n in names]).view(1, k, 1)
    probs = torch.softmax(logits / temps, dim=-1)  # (n, k, C)
    singles = {
        str(path): float((probs[:, i].argmax(-1) == labels).float().mean()) for i, path in enumerate(paths)
    }
    ensemble = float((probs.mean(1).argmax(-1) == labels).float().mean())

    # the public API gives the same ensemble labels (checked on the first 64 texts)
    api = wrapper.predict(texts[:64], prompts=names, max_length=args.max_length)
    agree = sum(int(a.label == b) for a, b in zip(api, probs[:64].mean(1).argmax(-1).tolist()))

    out = {
        "model": args.model,
        "data": args.data,
        "eval_size": len(texts),
        "max_length": args.max_length,
        "seed": args.seed,
        "prompts": [str(p) for p in paths],
        "deep": [read_prompt_file(p).deep_prompts is not None for p in paths],
        "singles": singles,
        "best_single": max(singles.values()),
        "mean_single": sum(singles.values()) / k,
        "ensemble": ensemble,
        "ensemble_minus_best_pts": round(100 * (ensemble - max(singles.values())), 2),
        "all_prompts_one_pass_seconds": seconds,
        "api_agreement_first_64": agree / min(64, len(texts)),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
    }
    atomic_write_json(args.out, out)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
