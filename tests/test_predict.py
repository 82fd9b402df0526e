"""Inference: batched, length-sorted, input order; odd inputs; temperature calibration; evaluation."""

import datasets
import pytest
import torch

from softprompt import (
    SoftPromptConfig,
    SoftPromptWrapper,
    evaluate_classifier,
    fit_temperature,
    predict,
    predict_logits,
    read_prompt_file,
)
from softprompt.inference import length_batches
from tests.conftest import make_model

TEXTS = [
    "great film",
    "the worst movie i ever watch really , not good at all , awful",
    "",
    "dull",
    "superb acting",
]


@pytest.fixture
def wrapper(tokenizer):
    model = make_model("bert")
    model.config.id2label = {0: "neg", 1: "pos"}
    return SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=4), tokenizer=tokenizer)


def test_batched_sorted_results_come_back_in_input_order(wrapper, tokenizer):
    one_by_one = torch.cat([predict_logits(wrapper, tokenizer, [t]) for t in TEXTS])
    batched = predict_logits(wrapper, tokenizer, TEXTS, batch_size=2)
    assert torch.allclose(batched, one_by_one, atol=1e-5)
    preds = wrapper.predict(TEXTS, batch_size=2)
    assert [p.label for p in preds] == one_by_one.argmax(-1).tolist()
    assert all(p.label_name in ("neg", "pos") and 0.5 <= p.confidence <= 1 for p in preds)


def test_length_batches_cap_rows_and_padded_tokens():
    lengths = [3, 9, 5, 9, 1, 30]
    batches = length_batches(lengths, batch_size=3, max_tokens=20)
    assert sorted(i for b in batches for i in b) == list(range(6))  # every row exactly once
    assert batches == [[5], [1, 3], [2, 0, 4]]  # 30 > 20 alone; then 2 x 9; then 3 x 5
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        assert lengths[batch[0]] == longest and (len(batch) == 1 or len(batch) * longest <= 20)
    assert length_batches(lengths, batch_size=2) == [[5, 1], [3, 2], [0, 4]]  # no token cap
    assert length_batches([], batch_size=4, max_tokens=8) == []


def test_token_capped_batches_give_the_same_predictions(wrapper, tokenizer):
    capped = predict_logits(wrapper, tokenizer, TEXTS, batch_size=4, max_batch_tokens=16)
    uncapped = predict_logits(wrapper, tokenizer, TEXTS, batch_size=4, max_batch_tokens=None)
    assert torch.allclose(capped, uncapped, atol=1e-5)
    for bad in (0, -3, 2.5, "big", True):
        with pytest.raises(ValueError, match="max_batch_tokens"):
            predict_logits(wrapper, tokenizer, TEXTS, max_batch_tokens=bad)


def test_odd_inputs(wrapper):
    assert wrapper.predict([]) == []
    huge = "great " * 200_000  # ~1.2 MB: truncated, not a crash
    preds = wrapper.predict(["", huge])
    assert len(preds) == 2
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        wrapper.predict(["ok", 3])
    with pytest.raises(TypeError, match="wrap a single input as \\[text\\]"):
        wrapper.predict("a single string")
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        wrapper.predict(["x"], batch_size=0)


def test_inference_mode_and_training_state_restored(wrapper):
    wrapper.train()
    logits = predict_logits(wrapper, wrapper.tokenizer, ["great film"])
    assert not logits.requires_grad
    assert wrapper.training  # put back as it was


def test_a_model_in_eval_mode_is_not_switched_and_one_in_training_mode_is(wrapper, monkeypatch):
    """Prediction switches modes only when some module is training (dropout on), and gives every module its own back."""
    calls: list[bool] = []
    original = type(wrapper).train
    monkeypatch.setattr(
        type(wrapper), "train", lambda self, mode=True: calls.append(mode) or original(self, mode)
    )
    wrapper.train()
    before = [m.training for m in wrapper.modules()]  # the wrapper trains, its frozen backbone stays in eval
    calls.clear()
    in_training = predict_logits(wrapper, wrapper.tokenizer, TEXTS)
    assert calls == [False]  # eval() for the run; afterwards each module's own mode, as it was
    assert [m.training for m in wrapper.modules()] == before
    wrapper.eval()
    calls.clear()
    in_eval = predict_logits(wrapper, wrapper.tokenizer, TEXTS)
    assert calls == [] and not any(m.training for m in wrapper.modules())  # nothing to switch
    assert torch.equal(in_training, in_eval)
    dropout = next(m for m in wrapper.model.modules() if isinstance(m, torch.nn.Dropout))
    dropout.train()  # one left training (Monte Carlo dropout): switched off for the run, back on after it
    calls.clear()
    assert torch.equal(predict_logits(wrapper, wrapper.tokenizer, TEXTS), in_eval)
    assert calls == [False] and dropout.training
    assert [m for m in wrapper.modules() if m.training] == [dropout]


def test_prediction_leaves_a_part_kept_in_eval_mode_in_eval_mode(tokenizer):
    """A training model whose backbone the user put in eval() keeps it there after predict (train(True) would not)."""
    model = make_model("bert").train()
    model.bert.eval()  # a frozen backbone without dropout, the head training
    before = {name: m.training for name, m in model.named_modules()}
    predict(model, tokenizer, TEXTS, batch_size=3)
    assert {name: m.training for name, m in model.named_modules()} == before


def test_fine_tuned_model_path(tokenizer):
    model = make_model("bert")
    preds = predict(model, tokenizer, TEXTS, batch_size=3)
    logits = model(**tokenizer(TEXTS, return_tensors="pt", padding=True)).logits
    assert [p.label for p in preds] == logits.argmax(-1).tolist()


def test_fit_temperature_recovers_a_known_scale():
    torch.manual_seed(0)
    true_logits = torch.randn(4000, 3) * 2
    labels = torch.distributions.Categorical(logits=true_logits).sample()
    t = fit_temperature(true_logits * 3, labels)  # over-confident by 3x
    assert abs(t - 3) < 0.3
    with pytest.raises(ValueError, match="need \\(n, C\\) logits"):
        fit_temperature(torch.zeros(3), torch.zeros(3))


def test_calibrate_stores_temperature_in_the_prompt_file(wrapper, tmp_path):
    t = wrapper.calibrate(TEXTS, [1, 0, 0, 0, 1])
    assert t > 0 and wrapper.prompts["default"].temperature == t
    path = wrapper.save_prompt(tmp_path / "p.safetensors")
    assert read_prompt_file(path).temperature == t
    reloaded = SoftPromptWrapper.from_prompt(wrapper.model, path, tokenizer=wrapper.tokenizer)
    assert [p.confidence for p in reloaded.predict(TEXTS)] == [p.confidence for p in wrapper.predict(TEXTS)]
    with pytest.raises(ValueError, match="one label per text"):
        wrapper.calibrate(TEXTS, [1, 0])


def test_evaluate_classifier(wrapper, tokenizer):
    data = datasets.Dataset.from_dict({"text": TEXTS, "label": [1, 0, 0, 0, 1]})
    metrics = evaluate_classifier(wrapper, tokenizer, data, batch_size=2)
    expected = (
        (predict_logits(wrapper, tokenizer, TEXTS).argmax(-1) == torch.tensor([1, 0, 0, 0, 1])).float().mean()
    )
    assert metrics["eval_accuracy"] == pytest.approx(float(expected))
    assert metrics["eval_samples"] == 5 and metrics["eval_samples_per_second"] > 0
    with pytest.raises(ValueError, match="lacks columns \\['label'\\]"):
        evaluate_classifier(wrapper, tokenizer, data.remove_columns("label"))
