"""Fuzz the prompt-file reader: mutate a valid file many times; each must load and predict finite values
or be refused with a library error (ValueError/TypeError/FileNotFoundError) that names the file.

    python benchmarks/fuzz_prompt_files.py --mutations 10000     # the documented run (docs/reliability.md)

Mutations: a metadata value replaced by a hostile string, a tensor changed (huge or NaN values, dropped,
reshaped, an extra one), or 1-8 random bytes of the file overwritten. A tiny random BERT and an in-memory
tokenizer stand in for a real model. Prints the counts as JSON; exits 1 on the first escape.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HOSTILE = ["", "0", "-1", "1e309", "nan", "inf", "999999999999999999999", "[]", "{}", "null", '"x"', "[[[[[[",
           '{"0": 5}', '{"type": "regression"}', "true", "1.5", " 2", "\u00e9", "[" * 5000, '{"a": ' * 3000]  # fmt: skip
TEXTS = ["a good film", "a bad plot that goes on"]


def mutate(rng: random.Random, meta: dict, tensors: dict, blob: bytes) -> bytes:
    kind = rng.choice(["meta", "meta", "tensor", "bytes"])
    if kind == "meta":
        key = rng.choice(sorted(meta))
        return save(tensors, metadata={**meta, key: rng.choice(HOSTILE)})
    if kind == "tensor":
        key = rng.choice(sorted(tensors))
        t = tensors[key].clone()
        choice = rng.choice(["scale", "nan", "drop", "reshape", "extra", "dtype"])
        if choice == "scale":
            t.view(-1)[rng.randrange(t.numel())] = rng.choice([1e3, 1e5, -1e38, 3.0])
        elif choice == "nan":
            t.view(-1)[0] = float("nan")
        elif choice == "drop":
            return save({k: v for k, v in tensors.items() if k != key}, metadata=meta)
        elif choice == "reshape":
            t = t.reshape(-1)
        elif choice == "dtype":
            t = t.to(rng.choice([torch.float16, torch.float64, torch.int64, torch.bool, torch.float8_e4m3fn]))
        else:
            return save({**tensors, "head.extra": torch.zeros(2)}, metadata=meta)
        return save({**tensors, key: t}, metadata=meta)
    data = bytearray(blob)
    for _ in range(rng.randint(1, 8)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def valid_prompt_file(workdir: Path) -> tuple[Path, dict, dict, torch.nn.Module]:
    """A deep prompt file with a head and label names for a tiny BERT: path, metadata, tensors, the model."""
    from softprompt import SoftPromptConfig, SoftPromptWrapper
    from tests.conftest import make_model, make_tokenizer

    model = make_model("bert")
    model.config.id2label, model.config.label2id = {0: "neg", 1: "pos"}, {"neg": 0, "pos": 1}
    path = workdir / "valid.safetensors"
    config = SoftPromptConfig(num_virtual_tokens=4, deep=True)
    SoftPromptWrapper(model, config, tokenizer=make_tokenizer()).save_prompt(path)
    with safe_open(str(path), framework="pt") as fh:
        meta = dict(fh.metadata())
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    return path, meta, tensors, model


def fuzz(mutations: int, seed: int, workdir: Path) -> dict[str, int]:
    """Counts of mutated files that loaded (and predicted finite values) and that were refused.

    Raises:
        AssertionError: a file escaped: another exception, an error not naming the file, or non-finite values.
    """
    from softprompt import SoftPromptWrapper, predict_logits
    from tests.conftest import make_tokenizer

    tokenizer = make_tokenizer()
    valid, meta, tensors, model = valid_prompt_file(workdir)
    blob = valid.read_bytes()
    rng = random.Random(seed)
    counts = {"mutations": mutations, "loaded": 0, "refused": 0}
    target = workdir / "mutated.safetensors"
    for i in range(mutations):
        target.write_bytes(mutate(rng, meta, tensors, blob))
        try:
            wrapper = SoftPromptWrapper.from_prompt(model, target, tokenizer=tokenizer)
            logits = predict_logits(wrapper, tokenizer, TEXTS)
        except (ValueError, TypeError, FileNotFoundError) as exc:
            assert str(target) in str(exc), f"mutation {i}: the error does not name the file: {exc}"
            counts["refused"] += 1
            continue
        assert torch.isfinite(logits).all(), f"mutation {i} loaded and predicted non-finite values"
        counts["loaded"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mutations", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        counts = fuzz(args.mutations, args.seed, Path(tmp))
    counts["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
