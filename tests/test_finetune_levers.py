"""A fine-tuned model predicts with the wrapper's speed levers, and never with stale weights.

``predict_logits`` runs a fine-tuned ``[CLS]`` classifier with its last layer for position 0 alone
(``models.first_token``) and its fp32 weights as prepacked oneDNN GEMMs while gradients are off
(``models.onednn``); the packed copies are keyed on each weight's version, storage and sampled values. The
test trains with the real ``Trainer`` (``softprompt.finetune.finetune``), predicts, trains again, predicts
again, and compares every prediction with the bare model's own forward on the current weights.
"""

from __future__ import annotations

import pandas as pd
import torch

from softprompt import load_data, predict_logits, tokenize_dataset
from softprompt.finetune import finetune
from softprompt.models import onednn
from softprompt.models.first_token import first_token_model
from tests.conftest import make_model

TEXTS = ["great film , superb acting", "dull", "the worst movie i ever watch really", "superb", "not great"]


def _bare_logits(model, tokenizer) -> torch.Tensor:
    """Each text alone through the model as transformers runs it: no trim, no packing, no padding."""
    model.eval()
    with torch.inference_mode():
        return torch.cat([model(**tokenizer([t], return_tensors="pt")).logits for t in TEXTS])


def test_train_predict_train_predict_matches_the_bare_model(tokenizer, tmp_path):
    model = make_model("bert", "seq").train()
    assert first_token_model(model.eval()) is not None  # the trim applies to this model
    frame = pd.DataFrame({"text": TEXTS * 4, "label": [1, 0, 0, 1, 0] * 4})
    data = load_data(frame, eval_split=None, label_names=["neg", "pos"])
    train = tokenize_dataset(data.train, tokenizer, max_length=32)
    seen = []
    for round_ in range(2):
        finetune(
            model, tokenizer, train, output_dir=tmp_path / f"round-{round_}", num_train_epochs=1,
            learning_rate=5e-3, per_device_train_batch_size=4, disable_tqdm=True,
        )  # fmt: skip
        # round 1 packs the trained weights; round 2 finds round 1's copies cached, and must not use them
        got = predict_logits(model, tokenizer, TEXTS, batch_size=2)
        torch.testing.assert_close(got, _bare_logits(model, tokenizer), atol=1e-5, rtol=1e-5)
        if onednn.onednn_unavailable() is None and onednn.onednn_default():  # on where measured faster
            weight = model.bert.encoder.layer[0].attention.self.query.weight
            assert id(weight) in onednn._CACHE  # the fine-tuned weights did run packed
        seen.append(got)
    assert not torch.allclose(seen[0], seen[1], atol=1e-4)  # the second round changed the weights


def test_a_write_through_data_is_seen(tokenizer):
    """A weight changed without a version bump (``.data``) is packed again, not served stale."""
    model = make_model("bert", "seq")
    before = predict_logits(model, tokenizer, TEXTS)
    with torch.no_grad():
        model.classifier.weight.data.mul_(-1.0)
    after = predict_logits(model, tokenizer, TEXTS)
    torch.testing.assert_close(after, _bare_logits(model, tokenizer), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(before, after, atol=1e-4)


def test_a_first_bf16_prediction_checks_onednn_outside_autocast(tokenizer, monkeypatch):
    """The once-per-process oneDNN check can first run under a bf16 prediction's autocast.

    It crashed there (``Float did not match BFloat16``), after a fine-tuning run had trained for hours.
    """
    monkeypatch.setattr(onednn, "_CHECKED", {})  # this process has not checked yet
    model = make_model("bert", "seq")
    got = predict_logits(model, tokenizer, TEXTS, bf16=True)
    inside = onednn._CHECKED["reason"]  # the check ran, inside the prediction's autocast
    torch.testing.assert_close(got, _bare_logits(model, tokenizer), atol=0.05, rtol=0.05)  # bf16 rounding
    monkeypatch.setattr(onednn, "_CHECKED", {})
    assert onednn.onednn_unavailable() == inside  # the same verdict as a check outside any autocast
