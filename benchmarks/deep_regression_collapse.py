"""Deep prompts on a regression task that never learn: reproduce the stall on a small setting.

One run of ``softprompt.runs.run_prompt_tuning`` on SICK relatedness (deep prompt, 500 training pairs by
default) with two knobs that test a hypothesis about the cause:

- ``--shift S`` adds ``S`` to every relatedness score (train and test), so the head's initial error has a
  larger constant part (SICK's scores have mean 3.53, sd 1.02);
- ``--bias-init`` sets the regression head's output bias to the mean of the training scores before
  training, so the initial error has no constant part at all.

Prints one JSON line (Pearson r of the reloaded prompt and per epoch, MSE). A run "never learned" when r stays
near 0 and the MSE near the scores' variance (~1.0): the prompt predicts the mean. Findings so far are in
docs/deep-prompts.md ("Deep prompts on regression").

Example (``M`` the MiniLM folder)::

    python benchmarks/deep_regression_collapse.py --model $M --data ../shared/data/sick --seed 1 --bias-init
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
from pathlib import Path

import pandas as pd
import torch

import softprompt.runs.recipes as recipes
from softprompt.runs.config import RunConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="the encoder folder (all-MiniLM-L6-v2)")
    p.add_argument("--data", required=True, help="the SICK folder (train.parquet, test.parquet)")
    p.add_argument("--shift", type=float, default=0.0, help="added to every relatedness score")
    p.add_argument("--bias-init", action="store_true", help="head output bias at the training scores' mean")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--train-size", type=int, default=500)
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--eval-size", type=int, default=None)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--shallow", action="store_true", help="an input-only prompt instead of a deep one")
    p.add_argument("--lr", type=float, default=1e-2, help="the prompt's peak learning rate")
    p.add_argument("--head-lr", type=float, default=None, help="the head's own peak learning rate")
    p.add_argument(
        "--head-init",
        default="model",
        choices=["model", "zeros", "fit"],
        help="RunConfig.head_init ('fit': the head starts at the ridge fit to the starting features)",
    )
    p.add_argument(
        "--deep-reparam-hidden", type=int, default=None, help="P-tuning v2's MLP over the deep vectors"
    )
    p.add_argument("--output-dir", default=None, help="default: a temporary folder")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="collapse-"))
    data = work / "data"
    data.mkdir()
    for split in ("train", "test"):
        frame = pd.read_parquet(Path(args.data) / f"{split}.parquet")
        frame["relatedness"] = frame["relatedness"] + args.shift
        frame.to_parquet(data / f"{split}.parquet")

    real = recipes.train_prompt
    probes: dict[str, dict[str, float]] = {}

    def train_prompt(wrapper, train, test, **kwargs):  # the run's own training, after the head's bias is set
        if args.bias_init:
            scores = torch.tensor(train["labels"], dtype=torch.float32)  # (n,)
            with torch.no_grad():
                wrapper.slot().head_params()["classifier.bias"].fill_(float(scores.mean()))
        probes["start"] = features(wrapper, test)
        out = real(wrapper, train, test, **kwargs)
        probes["end"] = features(wrapper, test)
        return out

    recipes.train_prompt = train_prompt
    if args.deep_reparam_hidden is not None:
        recipes.SoftPromptConfig = functools.partial(
            recipes.SoftPromptConfig, deep_reparam_hidden=args.deep_reparam_hidden
        )
    cfg = RunConfig(
        model=args.model, data=str(data), text_column="sentence_a", text_pair_column="sentence_b",
        label_column="relatedness", task="regression", deep=not args.shallow, train_size=args.train_size,
        data_seed=42, max_length=args.max_length, warmup=0.1, seed=args.seed, epochs=args.epochs, eval_size=args.eval_size,
        output_dir=args.output_dir or str(work / "run"), overwrite=True, lr=args.lr, head_lr=args.head_lr,
        head_init=args.head_init,
    )  # fmt: skip
    results = recipes.run_prompt_tuning(cfg)
    print(json.dumps({
        "shift": args.shift, "bias_init": args.bias_init, "deep": not args.shallow, "seed": args.seed,
        "train_size": args.train_size, "pearson": results["reloaded_eval_metrics"]["eval_pearson"],
        "mse": results["reloaded_eval_metrics"]["eval_mse"],
        "pearson_per_epoch": [e.get("eval_pearson") for e in results.get("epochs", [])],
        "lr": args.lr, "head_lr": args.head_lr, "head_init": args.head_init, "head_fit": results.get("head_fit"), "deep_reparam_hidden": args.deep_reparam_hidden, "probes": probes,
    }))  # fmt: skip


PROBE_ROWS = 128  # test pairs the collapse probe runs on


def features(wrapper, test) -> dict[str, float]:
    """What reaches the head, on the first test pairs: is it still different for different inputs?

    ``pooled_spread``: the head input's std across examples (mean over dims) divided by its mean norm;
    ``cls_cos``: mean cosine similarity of two examples' last-layer [CLS] states (1: every input looks
    the same); ``deep_norm``/``prompt_norm``: mean vector norms of the deep and input prompts; ``head_w``:
    the norm of the regression head's weight row.
    """
    head = wrapper.slot().heads["classifier"]  # the slot's own copy of the head runs, not the model's
    seen: list[torch.Tensor] = []
    handle = head.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach()))
    rows = test.select(range(min(PROBE_ROWS, len(test))))
    batch = wrapper.tokenizer.pad(
        [
            {k: rows[i][k] for k in ("input_ids", "attention_mask", "token_type_ids")}
            for i in range(len(rows))
        ],
        return_tensors="pt",
    )
    was = wrapper.training
    wrapper.eval()
    try:
        with torch.no_grad():
            out = wrapper(**batch, output_hidden_states=True)
    finally:
        handle.remove()
        wrapper.train(was)
    pooled = seen[0].float()  # (B, H)
    cls = out.hidden_states[-1][:, 0].float()  # (B, H)
    unit = torch.nn.functional.normalize(cls, dim=-1)
    cos = unit @ unit.T  # (B, B)
    b = cos.shape[0]
    slot = wrapper.slot()
    info = {
        "pooled_spread": float(pooled.std(0).mean() / pooled.norm(dim=-1).mean()),
        "cls_cos": float((cos.sum() - b) / (b * (b - 1))),
        "prompt_norm": float(slot.vectors().norm(dim=-1).mean()),
        "head_w": float(head.weight.norm()),
    }
    if slot.deep is not None:
        info["deep_norm"] = [round(float(x), 2) for x in slot.deep().detach().norm(dim=-1).mean(-1)]
    return info


if __name__ == "__main__":
    main()
