"""Per-step wall times of prompt-tuning MiniLM on a GPU, fp32 vs a bf16 backbone, plus a profile (see run.sh).

Shows what a new sequence length costs: before ``softprompt.models.backbone.attention_kernels`` kept SDPA
off cuDNN attention, every bf16 step with a new padded length took ~2 s (benchmarks/results/
gpu-h100-steps-before-cudnn-fix.txt); after, ~12 ms (gpu-h200-steps.txt).
"""

import os
import time
import warnings

import pandas as pd
import torch
import transformers

from softprompt import SoftPromptConfig, SoftPromptWrapper

warnings.filterwarnings("ignore")
MODEL = os.environ.get("MODEL", "/tmp/minilm")
BATCH = 8


def step(wrapper: SoftPromptWrapper, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor]) -> None:
    labels = torch.tensor([0, 1] * (BATCH // 2), device="cuda")
    wrapper(**batch, labels=labels).loss.backward()
    opt.step()
    opt.zero_grad()


def main() -> None:
    tok = transformers.AutoTokenizer.from_pretrained(MODEL)
    texts = pd.read_parquet(".gpu/imdb/train.parquet")["text"].tolist()[:64]
    for dtype in (torch.float32, torch.bfloat16):
        torch.manual_seed(0)
        model = transformers.AutoModelForSequenceClassification.from_pretrained(MODEL, num_labels=2)
        wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=20), tokenizer=tok)
        if dtype == torch.bfloat16:
            wrapper.cast_backbone(dtype)
        wrapper.cuda().train()
        opt = torch.optim.AdamW([p for p in wrapper.parameters() if p.requires_grad], lr=1e-2)
        times = []
        for i in range(12):  # 8 batches of different padded lengths, then 4 repeated
            rows = texts[(i % 8) * BATCH : (i % 8 + 1) * BATCH]
            batch = {k: v.cuda() for k, v in wrapper.tokenize(rows, max_length=512).items()}
            torch.cuda.synchronize()
            start = time.perf_counter()
            step(wrapper, opt, batch)
            torch.cuda.synchronize()
            times.append(round((time.perf_counter() - start) * 1000, 1))
        print(dtype, "step ms", times, flush=True)
        activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
        with torch.profiler.profile(activities=activities) as prof:
            for _ in range(3):
                step(wrapper, opt, batch)
            torch.cuda.synchronize()
        print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=12), flush=True)
        start = time.perf_counter()
        wrapper.predict(texts, max_length=512)
        torch.cuda.synchronize()
        print(dtype, "predict 64 texts s", round(time.perf_counter() - start, 3), flush=True)


if __name__ == "__main__":
    main()
