"""What a busy core does to training, and what ``--threads`` gets back.

Times prompt-tuning steps (forward + backward + AdamW on the prompt and head of a frozen encoder) in
fresh processes: on an idle machine with one thread per core, then beside ``--busy`` processes that each
keep one core spinning, with one thread per core (PyTorch's default) and with the threads ``--threads
auto`` picks (the cores nobody else runs on). Prints steps/s and the ratios, with the machine's CPU
capability. Run it alone: anything else on the machine is part of the measurement.

    python benchmarks/threads.py --model $M --steps 40
    python benchmarks/threads.py --smoke          # a tiny random model, seconds (the CI smoke test)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SPIN = "import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass\n"

WORKER = r"""
import json, sys, time, torch, transformers
from softprompt import SoftPromptConfig, SoftPromptWrapper
from softprompt.utils.threads import apply_threads

args = json.loads(sys.argv[1])
threads = apply_threads(args["threads"])
torch.manual_seed(0)
if args["model"]:
    model = transformers.AutoModelForSequenceClassification.from_pretrained(args["model"], num_labels=2)
else:
    config = transformers.BertConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=128, max_position_embeddings=256, num_labels=2)
    model = transformers.AutoModelForSequenceClassification.from_config(config)
# random ids, no tokenizer: the prompt goes first (the step's cost does not depend on where)
wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=20, placement="prepend")).train()
params = [p for p in wrapper.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=1e-2)
vocab = model.config.vocab_size
batch = {"input_ids": torch.randint(1000 if vocab > 2000 else 5, min(vocab, 2000), (args["batch"], args["length"])),
         "labels": torch.randint(0, 2, (args["batch"],))}

def step():
    loss = wrapper(**batch).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)

for _ in range(3):  # warm-up: allocator, OpenMP pool
    step()
start = time.perf_counter()
for _ in range(args["steps"]):
    step()
seconds = time.perf_counter() - start
print(json.dumps({"threads": threads, "steps_per_second": args["steps"] / seconds}))
"""


def _measure(settings: dict, busy: int, spin_seconds: float) -> dict:
    spinners = [
        subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=spin_seconds)]) for _ in range(busy)
    ]
    try:
        time.sleep(0.5 if busy else 0)  # let them take their cores
        done = subprocess.run([sys.executable, "-c", WORKER, json.dumps(settings)], capture_output=True, text=True,
                              check=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})  # fmt: skip
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a local encoder folder (default: a tiny random BERT)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--busy", type=int, default=1, help="processes that each keep one core busy")
    parser.add_argument("--smoke", action="store_true", help="tiny model, few steps (for CI)")
    parser.add_argument("--output-json", help="also write the results here")
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.steps, args.length = None, 3, 16
    import torch

    from softprompt.utils.threads import available_cores

    cores = available_cores()
    base = {"model": args.model, "steps": args.steps, "batch": args.batch, "length": args.length}
    spin = 600.0
    rows = {
        "idle, one thread per core": _measure({**base, "threads": cores}, 0, spin),
        f"{args.busy} busy core(s), one thread per core": _measure(
            {**base, "threads": cores}, args.busy, spin
        ),
        f"{args.busy} busy core(s), --threads auto": _measure({**base, "threads": "auto"}, args.busy, spin),
    }
    idle = rows["idle, one thread per core"]["steps_per_second"]
    out = {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores": cores,
        "torch": torch.__version__,
        "workload": base,
        "rows": rows,
    }
    print(
        f"CPU {out['cpu_capability']}, {cores} cores; prompt-tuning steps, batch {args.batch} x {args.length} tokens"
    )
    print("| setting | threads | steps/s | vs idle |")
    print("| --- | --- | --- | --- |")
    for name, row in rows.items():
        print(
            f"| {name} | {row['threads']} | {row['steps_per_second']:.2f} | {row['steps_per_second'] / idle:.2f}x |"
        )
    if args.output_json:
        with open(args.output_json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
