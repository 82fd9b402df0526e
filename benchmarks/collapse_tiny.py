"""Does a tiny random BERT reproduce the deep-prompt collapse on regression? (So far: no.)

The collapse (docs/deep-prompts.md) is measured on all-MiniLM-L6-v2: a deep prompt trained through a new
regression head maps every input to nearly one last-layer [CLS] state (mean cosine across inputs 0.988-0.999)
and predicts the mean; starting the head at the ridge fit (``fit_regression_head``) prevents it. A unit test
would need the same on a model built from a config in seconds. This script trains a deep prompt on such a
model, with the head as created and with the fitted head, and prints per setting and seed the [CLS] cosine
before -> after and the test Pearson r, so that a setting that collapses would show it.

The data is synthetic: texts of 3-9 words from a 40-word vocabulary, the target 1 + 4 x the share of words
from its first half (a mean near 3, like SICK's 1-5 scores). Training is a plain AdamW loop (batch 16,
weight decay 0) over the wrapper's trainable parameters: prompt, deep vectors and head.

    python benchmarks/collapse_tiny.py --init-range 0.02 0.1 0.2 --layers 4 --steps 600

Prints one line per (setting, head): ``cos before->after r`` for each seed.
"""

from __future__ import annotations

import argparse

import datasets
import numpy as np
import pandas as pd
import torch
import transformers

from softprompt import SoftPromptConfig, SoftPromptWrapper, fit_regression_head, tokenize_dataset

N_VIRTUAL, MAX_LENGTH, BATCH = 4, 32, 16
WORDS = [f"w{i}" for i in range(40)]  # the first 20 raise the score, the last 20 lower it


def make_tokenizer() -> transformers.PreTrainedTokenizerBase:
    """A WordPiece tokenizer over WORDS and BERT's special tokens, built in memory."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    return transformers.BertTokenizer(vocab={t: i for i, t in enumerate(vocab)})


def synthetic(n: int, seed: int) -> pd.DataFrame:
    """``n`` texts and their scores: 1 + 4 x the share of words from the first half of WORDS."""
    gen = np.random.default_rng(seed)
    texts, scores = [], []
    for _ in range(n):
        ids = gen.integers(0, len(WORDS), size=int(gen.integers(3, 10)))
        texts.append(" ".join(WORDS[i] for i in ids))
        scores.append(1 + 4 * float(np.mean(ids < len(WORDS) // 2)))
    return pd.DataFrame({"text": texts, "labels": scores})


def cls_cosine(wrapper: SoftPromptWrapper, batch: dict[str, torch.Tensor]) -> float:
    """Mean cosine between the last-layer [CLS] states of different inputs (1.0: every input the same)."""
    with torch.no_grad():
        cls = wrapper(**batch, output_hidden_states=True).hidden_states[-1][:, 0]  # (n, H)
    unit = torch.nn.functional.normalize(cls, dim=-1)
    n = unit.shape[0]
    return float(((unit @ unit.T).sum() - n) / (n * n - n))


def run(
    args: argparse.Namespace, init_range: float, fit: bool, seed: int, tokenizer
) -> tuple[float, float, float]:
    """``(cosine before, cosine after, test Pearson r)`` of one deep prompt trained ``args.steps`` steps."""
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=len(tokenizer), hidden_size=args.hidden, num_hidden_layers=args.layers, num_attention_heads=4,
        intermediate_size=2 * args.hidden, max_position_embeddings=64, num_labels=1, problem_type="regression",
        initializer_range=init_range, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    model = transformers.AutoModelForSequenceClassification.from_config(config).eval()
    wrapper = SoftPromptWrapper(
        model, SoftPromptConfig(num_virtual_tokens=N_VIRTUAL, deep=True, seed=seed), tokenizer=tokenizer
    )
    train, test = (
        tokenize_dataset(datasets.Dataset.from_pandas(synthetic(n, s)), tokenizer, max_length=MAX_LENGTH,
                         num_virtual_tokens=N_VIRTUAL)
        for n, s in ((args.train_rows, 0), (128, 1))
    )  # fmt: skip
    if fit:
        fit_regression_head(wrapper, train)
    keys = ("input_ids", "token_type_ids", "attention_mask")
    pad = lambda rows: tokenizer.pad([{k: r[k] for k in keys} for r in rows], return_tensors="pt")  # noqa: E731
    train_batch, test_batch = pad(train), pad(test)  # (n, T) each
    y_train = torch.tensor(train["labels"], dtype=torch.float32)
    y_test = np.asarray(test["labels"])
    before = cls_cosine(wrapper, test_batch)
    params = [p for p in wrapper.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    draw = torch.Generator().manual_seed(seed)
    wrapper.train()
    for _ in range(args.steps):
        idx = torch.randint(0, len(train), (BATCH,), generator=draw)
        loss = wrapper(**{k: v[idx] for k, v in train_batch.items()}, labels=y_train[idx]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    wrapper.eval()
    with torch.no_grad():
        predicted = wrapper(**test_batch).logits.squeeze(-1).numpy()  # (n,)
    r = float(np.corrcoef(predicted, y_test)[0, 1]) if predicted.std() > 0 else 0.0
    return before, cls_cosine(wrapper, test_batch), r


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--init-range", type=float, nargs="+", default=[0.02, 0.2], help="BertConfig.initializer_range"
    )
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--train-rows", type=int, default=256)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = p.parse_args()
    torch.set_num_threads(1)
    tokenizer = make_tokenizer()
    print(f"layers {args.layers}, hidden {args.hidden}, steps {args.steps}, lr {args.lr}, seeds {args.seeds}")
    for init_range in args.init_range:
        for fit in (False, True):
            runs = [run(args, init_range, fit, seed, tokenizer) for seed in args.seeds]
            cells = " | ".join(f"cos {a:.3f}->{b:.3f} r {r:.3f}" for a, b, r in runs)
            print(f"init_range {init_range} head {'fit' if fit else 'as created'}: {cells}", flush=True)


if __name__ == "__main__":
    main()
