"""Fuzz the small-file readers behind the input policy: every case must load or be refused with a ValueError.

    python benchmarks/fuzz_inputs.py --cases 4000         # the documented run (docs/reliability.md)
    python benchmarks/fuzz_inputs.py --cases 50           # a smoke test

Each case is a hostile text (a mutated real file, deep brackets, YAML anchors and aliases, random fragments)
written as a ``--config`` file (``.json`` and ``.yaml``), a prediction state file, a ``.jsonl`` input row and
a PEFT ``adapter_config.json``, then read by softprompt's reader for it. Counted: loaded, refused cleanly
(``ValueError``), escaped (any other exception: a bug) and slow (over ``--slow`` seconds: a hang in the making).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

from softprompt import SoftPromptConfig, SoftPromptWrapper, export_peft_adapter
from softprompt.hub.peft_import import slot_from_adapter
from softprompt.runs.config_file import read_config_file, resolve_config_keys
from softprompt.stream.chunk_log import read_state
from softprompt.stream.input import resolve_columns

FRAGMENTS = ["{", "}", "[", "]", ":", ",", "&a ", "*a", "- ", "\n", '"', "'", "!!python/object:os.system", "1e999",
             "null", "true", "-1", "\x00", "\u2028", "a: &x [*x]", "<<: *a"]  # fmt: skip
SEEDS = {
    "config": '{"model": "m", "data": "d", "lr": 0.01, "training_args": {"weight_decay": 0.1}}',
    "state": '{"version": 1, "input": {}, "settings": {}, "shard": {"rank": 0, "world_size": 1}, "next_chunk": 0, '
    '"rows_done": 0, "output_bytes": 0, "output_sha256": "", "complete": false}',
    "row": '{"text": "a film", "text_pair": "a movie"}',
}


def hostile(rng: random.Random, seed_text: str) -> str:
    """One hostile text: a mutated real file, deep nesting, an alias bomb, or fragments."""
    kind = rng.randrange(5)
    if kind == 0:  # mutate a real file: replace, insert and delete characters
        chars = list(seed_text)
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(chars) + 1)
            op = rng.randrange(3)
            if op == 0 and chars:
                chars[min(at, len(chars) - 1)] = rng.choice(FRAGMENTS)
            elif op == 1:
                chars.insert(at, rng.choice(FRAGMENTS))
            elif chars:
                del chars[min(at, len(chars) - 1)]
        return "".join(chars)
    if kind == 1:
        n = rng.choice([10, 100, 1_000, 10_000, 200_000])
        return rng.choice(["[", '{"a":']) * n + "1" + rng.choice(["]", "}"]) * n
    if kind == 2:  # billion laughs of random depth and width
        width, depth = rng.randint(2, 12), rng.randint(2, 12)
        lines = [f"a0: &a0 [{','.join(['lol'] * width)}]"]
        lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * width)}]" for i in range(1, depth)]
        return "\n".join(lines)
    if kind == 3:
        return json.dumps(_value(rng, 0))
    return "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 80)))


def _value(rng: random.Random, depth: int, budget: list[int] | None = None) -> object:
    """A random JSON value of at most ~200 nodes, nested up to 60 levels (a budget keeps it from exploding)."""
    budget = [200] if budget is None else budget
    budget[0] -= 1
    if depth > 60 or budget[0] <= 0 or rng.random() < 0.3:
        return rng.choice([None, True, 1, -1, 1e308, "x", "", "\u2028"])
    if rng.random() < 0.5:
        return [_value(rng, depth + 1, budget) for _ in range(rng.randint(0, 3))]
    keys = ["model", "data", "lr", "text", "seed", ""]
    return {rng.choice(keys): _value(rng, depth + 1, budget) for _ in range(rng.randint(0, 3))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=4000, help="hostile texts, each read by every reader")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slow", type=float, default=2.0, help="seconds after which a read counts as slow")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    outcomes: Counter[tuple[str, str]] = Counter()
    escaped: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        from tests.conftest import make_model  # tiny models: no download

        model = make_model(seed=0)
        adapter = export_peft_adapter(
            SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=4, placement="prepend")),
            root / "adapter",
        )
        readers = {
            "config.json": (
                root / "run.json",
                lambda p: resolve_config_keys(read_config_file(p), source=str(p)),
            ),
            "config.yaml": (
                root / "run.yaml",
                lambda p: resolve_config_keys(read_config_file(p), source=str(p)),
            ),
            "state": (root / "out.jsonl.state.json", read_state),
            "jsonl row": (root / "in.jsonl", resolve_columns),
            "adapter_config.json": (
                adapter / "adapter_config.json",
                lambda p: slot_from_adapter(model, p.parent),
            ),
        }
        seeds = {"config.json": "config", "config.yaml": "config", "state": "state", "jsonl row": "row",
                 "adapter_config.json": "adapter"}  # fmt: skip
        SEEDS["adapter"] = (adapter / "adapter_config.json").read_text()  # a real one, mutated
        for case in range(args.cases):
            for name, (path, read) in readers.items():
                text = hostile(rng, SEEDS[seeds[name]])
                if name == "jsonl row":
                    text = text.replace("\n", " ") + "\n"
                path.write_text(text, encoding="utf-8", errors="surrogatepass")
                t0 = time.perf_counter()
                try:
                    read(path)
                    outcome = "loaded"
                except ValueError:
                    outcome = "refused"
                except Exception:
                    outcome = "escaped"
                    escaped.append(f"case {case} {name}: {traceback.format_exc(limit=2)}")
                if time.perf_counter() - t0 > args.slow:
                    outcomes[(name, "slow")] += 1
                outcomes[(name, outcome)] += 1
    seconds = time.perf_counter() - started
    print(f"{args.cases} cases x {len(readers)} readers, seed {args.seed}, {seconds:.0f} s")
    for name in readers:
        row = {k: outcomes[(name, k)] for k in ("loaded", "refused", "escaped", "slow")}
        print(f"  {name:20s} {row}")
    total = {
        k: sum(v for (_, o), v in outcomes.items() if o == k)
        for k in ("loaded", "refused", "escaped", "slow")
    }
    print(f"  {'all':20s} {total}")
    for line in escaped[:10]:
        print(line)


if __name__ == "__main__":
    main()
