"""A GPU-sized prompt-tuning benchmark: a bert-base-shaped model, chapter vs PEFT vs softprompt, all in bf16.

The model is ``BertForSequenceClassification(BertConfig())`` with random weights (12 layers, 768 wide,
110M parameters: no weights to carry to a machine without network) and the bert-base-uncased
vocabulary of ``--tokenizer`` (MiniLM's is the same). Every setup runs ``prompt_tuning.py``'s code, with
the chapter's sizes: 5,000 train and 5,000 test IMDb reviews at 512 tokens, batch 32, one epoch (157
steps), bf16 wherever the setup can use it (autocast in the chapter's loop and PEFT's ``Trainer``,
a bf16 backbone in softprompt), each setup training and predicting 3 times in its own process (the
median is reported, the first repeat pays for CUDA's warm-up). Random weights: accuracy means nothing.

Targets (softprompt vs the others, same run): training >= 2x chapter and >= 1.5x PEFT; prediction
>= 5x chapter and >= 2x PEFT. Prints the table and then the whole report as one JSON.

    python benchmarks/gpu/bert_base.py --tokenizer .gpu/minilm16 --data .gpu/imdb --out $OUT/bert-base.json
    python benchmarks/gpu/bert_base.py --smoke --tokenizer DIR --data DIR   # CPU, tiny model: plumbing only

Expected on one H100 (not yet run): about 5-6 minutes, most of it the chapter predicting 3 x 5,000
reviews one at a time; ``--repeats 2`` or ``--test-size 2000`` shorten it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # benchmarks/

import prompt_tuning  # noqa: E402
from child_process import run_child, tail  # noqa: E402
from prompt_tuning_report import GPU_TARGETS  # noqa: E402

SETUPS = "chapter,peft,softprompt"
FULL = {"train_size": 5000, "test_size": 5000, "max_length": 512, "batch_size": 32, "repeats": 3}
# --smoke: a 2-layer, 32-wide BERT on CPU; checks that every path runs, never how fast
SMOKE = {"train_size": 16, "test_size": 12, "max_length": 40, "batch_size": 4, "repeats": 2}
SMOKE_CONFIG = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37,
                "max_position_embeddings": 64}  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--tokenizer", help="folder with a bert-base-uncased-vocabulary tokenizer (default: MiniLM's)"
    )
    p.add_argument("--data", default=str(prompt_tuning.WORKLOADS["imdb"].default_data),
                   help="IMDb folder: train.parquet, test.parquet (default %(default)s)")  # fmt: skip
    p.add_argument("--smoke", action="store_true", help=f"tiny model on any device, sizes {SMOKE}")
    for key, value in FULL.items():
        p.add_argument(
            f"--{key.replace('_', '-')}", type=int, help=f"default {value} ({SMOKE[key]} with --smoke)"
        )
    p.add_argument("--setups", default=SETUPS, help="default %(default)s")
    p.add_argument("--seed", type=int, default=42, help="the random weights' and every setup's seed")
    p.add_argument("--gemm-seconds", type=float, default=2.0, help="per GEMM shape and dtype; 0: skip")
    p.add_argument("--no-bf16", action="store_true", help="fp32 for every setup (for comparison)")
    p.add_argument("--no-warmup", action="store_true", help="skip the unmeasured cache-filling process")
    p.add_argument("--workdir", help="keeps the model, logs and artefacts (default: temporary, removed)")
    p.add_argument("--out", help="JSON path; the table goes beside it as .md")
    p.add_argument("--build-model", metavar="DIR", help=argparse.SUPPRESS)  # child: write the model, exit
    args = p.parse_args(argv)
    for key, value in (SMOKE if args.smoke else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.tokenizer is None:
        args.tokenizer = prompt_tuning._default_model()
    return args


def build_model(args: argparse.Namespace, folder: Path) -> None:
    """Save a randomly initialised bert-base-shaped classifier (or the smoke test's tiny one) with the tokenizer."""
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(args.tokenizer)
    shape = SMOKE_CONFIG if args.smoke else {}  # BertConfig()'s defaults are bert-base's shape
    config = transformers.BertConfig(vocab_size=len(tokenizer), num_labels=2, **shape)
    transformers.set_seed(args.seed)
    transformers.BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.build_model:
        build_model(args, Path(args.build_model))
        return 0
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="softprompt-gpu-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    model = workdir / ("bert-tiny-random" if args.smoke else "bert-base-random")
    # in a child, like everything that imports torch: the driver's own size would floor the setups' peak RSS
    build = [sys.executable, __file__, "--build-model", str(model), "--tokenizer", args.tokenizer, "--seed", str(args.seed),
             *(["--smoke"] if args.smoke else [])]  # fmt: skip
    if run_child(build, workdir / "build-model.log").returncode != 0:
        print(f"building the model failed:\n{tail(workdir / 'build-model.log')}", file=sys.stderr)
        return 1
    out = (
        Path(args.out)
        if args.out
        else HERE.parent / "results" / f"gpu-bert-base{'-smoke' if args.smoke else ''}.json"
    )
    bench = prompt_tuning.parse_args([
        "--workload", "imdb", "--model", str(model), "--data", args.data, "--setups", args.setups,
        "--train-size", str(args.train_size), "--test-size", str(args.test_size), "--max-length", str(args.max_length),
        "--batch-size", str(args.batch_size), "--repeats", str(args.repeats), "--seed", str(args.seed),
        "--gemm-seconds", str(args.gemm_seconds), "--workdir", str(workdir / "runs"), "--out", str(out),
        *([] if args.no_bf16 else ["--bf16"]), *(["--no-warmup"] if args.no_warmup else []),
    ])  # fmt: skip
    try:
        code = prompt_tuning.run_benchmark(bench, GPU_TARGETS)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    report = json.loads(out.read_text())
    report["benchmark"] = "gpu_bert_base"
    report["model_config"] = (
        "BertConfig() (random weights)" if not args.smoke else f"BertConfig(**{SMOKE_CONFIG})"
    )
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return code


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
