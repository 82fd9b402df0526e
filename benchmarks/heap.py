"""What keeping the heap (``softprompt.utils.heap.retained_heap``) buys: steps with and without, in fresh processes.

    python benchmarks/heap.py --model $M                                  # the reported run
    python benchmarks/heap.py --model $M --rounds 1 --steps 2 --batch 2 --length 64 --gemm-seconds 0   # smoke

glibc maps every allocation above its mmap threshold afresh and unmaps it on free, so each CPU training
step faults its large activations in again. Each workload runs in its own child process per setting
(``SOFTPROMPT_RETAIN_HEAP=1`` or ``0``, so the library's own default follows it), settings alternating round
by round; a child times ``--steps`` steps after one warm-up step and reports the median step, its system
CPU time, its page faults and its peak resident memory. Workloads (MiniLM, random token ids of
``--length``):

- ``finetune``: a ``BertForSequenceClassification`` in training mode (dropout on, as ``Trainer`` runs it),
  batch ``--ft-batch``, AdamW over every weight; under bf16 autocast where bf16 is native, else fp32
  (``finetune-fp32``: fp32 everywhere, the library's default; ``finetune-varying``: as ``finetune``, each
  step at another length, cycling through eighths of ``--length``, as length-grouped batches come: what
  fragments a kept heap). Fine-tuning workloads also run ``on, trimmed``: the heap's free pages given back
  every ``--trim-every`` steps, as the library's fine-tuning does;
- ``prompt``: a ``SoftPromptWrapper`` training step (20 virtual tokens, the library's defaults: backbone
  dropout off), batch ``--batch``;
- ``predict``: ``softprompt.predict_logits`` of ``--predict-texts`` texts (the library's batching).

The GEMM peak of the same run (``gemm_peak.py``) is printed alongside.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

from report import finish

# the driver imports no torch: a child's peak resident memory starts from its parent's at fork
WORKLOADS = ("finetune", "finetune-fp32", "finetune-varying", "prompt", "predict")
VARYING = (8, 5, 2, 7, 4, 8, 3, 6)  # finetune-varying's lengths, in eighths of --length, cycled
# setting -> (heap kept, trim every N steps): the library's fine-tuning trims its kept heap now and then
SETTINGS = {"off": (False, 0), "on": (True, 0), "on, trimmed": (True, -1)}


def _step_fn(workload: str, args: argparse.Namespace) -> Any:
    """A function running one step (or one prediction call) of ``workload``."""
    import torch
    import transformers
    from gemm_peak import native_bf16

    torch.manual_seed(0)
    tokenizer = transformers.AutoTokenizer.from_pretrained(args.model)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=2)
    vocab = tokenizer.vocab_size
    low = min(1000, vocab // 2)  # ids past the special tokens
    if workload.startswith("finetune"):
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
        ids = torch.randint(low, vocab, (args.ft_batch, args.length))  # (b, T)
        labels = torch.randint(0, 2, (args.ft_batch,))
        bf16 = workload != "finetune-fp32" and native_bf16()
        lengths = [args.length * k // 8 for k in VARYING] if workload == "finetune-varying" else [args.length]
        done = [0]

        def step() -> None:
            length = lengths[done[0] % len(lengths)]
            done[0] += 1
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(input_ids=ids[:, :length], labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

        return step
    from softprompt import SoftPromptConfig, SoftPromptWrapper, predict_logits

    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=20, seed=0), tokenizer=tokenizer)
    room = wrapper.max_input_length(args.length)
    if workload == "prompt":
        wrapper.train()
        optimizer = torch.optim.AdamW([p for p in wrapper.parameters() if p.requires_grad], lr=1e-2)
        ids = torch.randint(low, vocab, (args.batch, room))  # (b, T - virtual tokens)
        batch = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "labels": torch.randint(0, 2, (args.batch,)),
        }

        def step() -> None:
            wrapper(**batch).loss.backward()
            optimizer.step()
            optimizer.zero_grad()

        return step
    generator = torch.Generator().manual_seed(0)
    words = [
        tokenizer.convert_ids_to_tokens(int(i))
        for i in torch.randint(low, vocab, (room,), generator=generator)
    ]
    texts = [
        " ".join(words[: max(1, room - 2 - (i % 64))]) for i in range(args.predict_texts)
    ]  # lengths near room

    def step() -> None:
        predict_logits(wrapper, tokenizer, texts, max_length=args.length)

    return step


def machine(args: argparse.Namespace) -> dict[str, Any]:
    """This machine's CPU kind, threads and (unless ``--gemm-seconds 0``) GEMM peak, measured in a child."""
    import torch
    import transformers
    from gemm_peak import gemm_peaks

    from softprompt.utils.cpu import cpu_vendor
    from softprompt.utils.heap import heap_unavailable

    info: dict[str, Any] = {
        "threads": torch.get_num_threads(), "cpu_vendor": cpu_vendor(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "heap_unavailable": heap_unavailable(),
    }  # fmt: skip
    if args.gemm_seconds > 0:
        config = transformers.AutoConfig.from_pretrained(args.model)
        info["gemm"] = gemm_peaks(config.hidden_size, config.intermediate_size, seconds=args.gemm_seconds)
    return info


def child(workload: str, args: argparse.Namespace) -> dict[str, Any]:
    """Time ``args.steps`` steps of ``workload`` in this process (the setting is the environment's)."""
    from softprompt.utils.heap import release_free_pages, retained_heap, retained_heap_default

    step = _step_fn(workload, args)
    trim_every = int(os.environ.get("HEAP_BENCH_TRIM_EVERY", "0"))
    with retained_heap(retained_heap_default()):  # prediction's own call enters it too (nested: one setting)
        step()  # warm-up: packing, the first faults
        before = resource.getrusage(resource.RUSAGE_SELF)
        seconds = []
        for i in range(1, args.steps + 1):
            start = time.perf_counter()
            step()
            if trim_every and i % trim_every == 0:
                release_free_pages()  # as the library's fine-tuning does every TRIM_EVERY steps
            seconds.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "median_s": statistics.median(seconds),
        "total_s": sum(seconds),
        "sys_s_per_step": (after.ru_stime - before.ru_stime) / args.steps,
        "user_s_per_step": (after.ru_utime - before.ru_utime) / args.steps,
        "page_faults_per_step": (after.ru_minflt - before.ru_minflt) / args.steps,
        "peak_rss_mib": after.ru_maxrss / 1024,
    }


def _run_child(workload: str, on: bool | None, argv: list[str], trim_every: int = 0) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HEAP_BENCH_TRIM_EVERY": str(trim_every)}
    if on is not None:
        env["SOFTPROMPT_RETAIN_HEAP"] = "1" if on else "0"
    out = subprocess.run(
        [sys.executable, __file__, "--child", workload, *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{workload} (heap kept: {on}) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a BERT-family model folder (MiniLM in docs/benchmarks.md)")
    p.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    p.add_argument("--length", type=int, default=512, help="tokens a row (virtual tokens included)")
    p.add_argument("--ft-batch", type=int, default=16, help="fine-tuning rows a step")
    p.add_argument("--batch", type=int, default=8, help="prompt-tuning rows a step")
    p.add_argument("--predict-texts", type=int, default=64, help="texts a prediction call")
    p.add_argument("--steps", type=int, default=4, help="timed steps a child (after one warm-up)")
    p.add_argument("--rounds", type=int, default=2, help="children per setting and workload, alternating")
    p.add_argument(
        "--trim-every", type=int, default=4, help="fine-tuning's 'on, trimmed': steps between trims"
    )
    p.add_argument("--gemm-seconds", type=float, default=1.0, help="per shape in the GEMM peak; 0: skip")
    p.add_argument("--out", help="also write the JSON here")
    p.add_argument("--child", choices=(*WORKLOADS, "machine"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        import transformers

        transformers.logging.set_verbosity_error()
        print(json.dumps(machine(args) if args.child == "machine" else child(args.child, args)))
        return
    forwarded = [a for a in argv if a != "--out"]
    if args.out:
        forwarded.remove(args.out)
    result: dict[str, Any] = {
        "model": args.model,
        "settings": {k: getattr(args, k) for k in ("length", "ft_batch", "batch", "predict_texts", "steps", "rounds",
                                                   "trim_every")},
        **_run_child("machine", None, forwarded),
    }  # fmt: skip
    print("| workload | heap | median step s | sys s/step | page faults/step | peak RSS MiB | speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for workload in args.workloads:
        settings = [s for s in SETTINGS if workload.startswith("finetune") or SETTINGS[s][1] == 0]
        runs: dict[str, list[dict[str, Any]]] = {s: [] for s in settings}
        for _ in range(args.rounds):
            for setting in settings:
                on, trim = SETTINGS[setting]
                runs[setting].append(_run_child(workload, on, forwarded, args.trim_every if trim else 0))
        result[workload] = runs
        base = statistics.median(r["median_s"] for r in runs["off"])
        for setting, rs in runs.items():
            med = statistics.median(r["median_s"] for r in rs)
            print(f"| {workload} | {setting} | {med:.3f} | {statistics.median(r['sys_s_per_step'] for r in rs):.2f} "
                  f"| {statistics.median(r['page_faults_per_step'] for r in rs):,.0f} "
                  f"| {max(r['peak_rss_mib'] for r in rs):,.0f} | {base / med:.2f}x |")  # fmt: skip
    finish(result, args.out, f", {result['threads']} threads; retained_heap here: "
                             f"{result['heap_unavailable'] or 'available'}")  # fmt: skip


if __name__ == "__main__":
    main()
