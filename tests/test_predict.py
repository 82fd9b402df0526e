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


def test_odd_inputs(wrapper):
    assert wrapper.predict([]) == []
    huge = "great " * 200_000  # ~1.2 MB: truncated, not a crash
    preds = wrapper.predict(["", huge])
    assert len(preds) == 2
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        wrapper.predict(["ok", 3])
    with pytest.raises(TypeError, match="wrap a single text as \\[text\\]"):
        wrapper.predict("a single string")
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        wrapper.predict(["x"], batch_size=0)


def test_inference_mode_and_training_state_restored(wrapper):
    wrapper.train()
    logits = predict_logits(wrapper, wrapper.tokenizer, ["great film"])
    assert not logits.requires_grad
    assert wrapper.training  # put back as it was


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
