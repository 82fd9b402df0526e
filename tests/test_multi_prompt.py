"""Many prompts on one frozen backbone: named slots, hot-swapping, and batches that mix tasks."""

import pytest
import torch

from softprompt import SoftPromptConfig, SoftPromptWrapper
from tests.conftest import batch, make_model


def _trained_file(tokenizer, tmp_path, name, seed, num_labels=2, n=4, task="seq"):
    model = make_model("bert", task, num_labels=num_labels)
    wrapper = SoftPromptWrapper(
        model, SoftPromptConfig(num_virtual_tokens=n, seed=seed, init="random"), tokenizer=tokenizer
    )
    with torch.no_grad():
        for p in wrapper.prompts["default"].heads.parameters():
            p.normal_(generator=torch.Generator().manual_seed(seed))
    return wrapper.save_prompt(tmp_path / f"{name}.safetensors")


@pytest.fixture
def two_tasks(tokenizer, tmp_path):
    a = _trained_file(tokenizer, tmp_path, "sentiment", seed=1)
    b = _trained_file(tokenizer, tmp_path, "topic", seed=2)
    wrapper = SoftPromptWrapper.from_prompt(make_model("bert"), a, tokenizer=tokenizer, name="sentiment")
    assert wrapper.load_prompt(b) == "topic"  # name defaults to the file stem
    return wrapper


def test_hot_swap(two_tasks, tokenizer):
    inputs = batch(tokenizer)
    with torch.no_grad():
        a = two_tasks(**inputs).logits
        two_tasks.set_active_prompt("topic")
        b = two_tasks(**inputs).logits
        two_tasks.set_active_prompt("sentiment")
        a2 = two_tasks(**inputs).logits
    assert not torch.allclose(a, b)
    assert torch.equal(a, a2)
    assert two_tasks.prompt_names == ["sentiment", "topic"]


def test_mixed_batch_equals_separate_runs(two_tasks, tokenizer):
    inputs = batch(tokenizer)
    names = ["topic", "sentiment", "topic"]
    labels = torch.tensor([1, 0, 0])
    with torch.no_grad():
        mixed = two_tasks(**inputs, prompt_names=names, labels=labels)
        sep = {}
        for name in ("sentiment", "topic"):
            two_tasks.set_active_prompt(name)
            sep[name] = two_tasks(**inputs, labels=labels)
    for i, name in enumerate(names):
        assert torch.allclose(mixed.logits[i], sep[name].logits[i], atol=1e-6)
    expected = torch.nn.functional.cross_entropy(
        torch.stack([sep[n].logits[i] for i, n in enumerate(names)]), labels
    )
    assert torch.allclose(mixed.loss, expected, atol=1e-6)


def test_mixed_batch_trains_each_prompt_and_head(two_tasks, tokenizer):
    out = two_tasks(
        **batch(tokenizer), prompt_names=["topic", "sentiment", "topic"], labels=torch.tensor([1, 0, 0])
    )
    out.loss.backward()
    for name in ("topic", "sentiment"):
        slot = two_tasks.prompts[name]
        assert slot.prompt.grad is not None and slot.prompt.grad.abs().sum() > 0
        assert slot.head_params()["classifier.weight"].grad.abs().sum() > 0


def test_mixed_heads_with_different_class_counts(tokenizer, tmp_path):
    a = _trained_file(tokenizer, tmp_path, "two", seed=1, num_labels=2)
    wrapper = SoftPromptWrapper.from_prompt(
        make_model("bert", num_labels=2), a, tokenizer=tokenizer, name="two"
    )
    three = make_model("bert", num_labels=3)
    # a 3-class head cannot live on a 2-class model: the file is checked against the model
    path3 = SoftPromptWrapper(three, tokenizer=tokenizer).save_prompt(tmp_path / "three.safetensors")
    with pytest.raises(ValueError, match="num_labels=3 but the model has 2"):
        wrapper.load_prompt(path3)


def test_mixed_batch_errors(two_tasks, tokenizer, tmp_path):
    inputs = batch(tokenizer)
    with pytest.raises(ValueError, match="one name per example \\(3\\)"):
        two_tasks(**inputs, prompt_names=["topic"])
    with pytest.raises(KeyError, match="no prompt named 'nope'"):
        two_tasks(**inputs, prompt_names=["topic", "nope", "topic"])
    longer = _trained_file(tokenizer, tmp_path, "longer", seed=3, n=6)
    two_tasks.load_prompt(longer)
    with pytest.raises(ValueError, match="same num_virtual_tokens and placement"):
        two_tasks(**inputs, prompt_names=["topic", "longer", "topic"])


def test_slot_management_never_loses_a_prompt(two_tasks, tmp_path, tokenizer):
    path = _trained_file(tokenizer, tmp_path, "topic", seed=9)
    with pytest.raises(ValueError, match="named 'topic' is loaded already; pass replace=True"):
        two_tasks.load_prompt(path)
    two_tasks.load_prompt(path, replace=True, activate=True)
    assert two_tasks.active_prompt == "topic"
    with pytest.raises(ValueError, match="cannot remove the active prompt"):
        two_tasks.remove_prompt("topic")
    two_tasks.remove_prompt("sentiment")
    assert two_tasks.prompt_names == ["topic"]
    with pytest.raises(KeyError, match="loaded prompts: \\['topic'\\]"):
        two_tasks.set_active_prompt("sentiment")
    with pytest.raises(ValueError, match="prompt name must be"):
        two_tasks.load_prompt(path, name="a.b")


def test_each_slot_saves_its_own_head(two_tasks, tmp_path):
    from softprompt import read_prompt_file

    two_tasks.save_prompt(tmp_path / "s.safetensors", name="sentiment")
    two_tasks.save_prompt(tmp_path / "t.safetensors", name="topic")
    s, t = read_prompt_file(tmp_path / "s.safetensors"), read_prompt_file(tmp_path / "t.safetensors")
    assert not torch.equal(s.head["classifier.weight"], t.head["classifier.weight"])
    assert torch.equal(
        s.head["classifier.weight"], two_tasks.prompts["sentiment"].head_params()["classifier.weight"]
    )


# ---------------------------------------------------------------- ensembles (Lester et al. 2021)

TEXTS = ["great film", "dull", "the worst movie i ever watch really", "superb acting , great plot", "bad"]


def test_ensemble_probabilities_are_the_mean_of_each_prompts(two_tasks, tokenizer):
    from softprompt.inference import predict_logits
    from softprompt.wrapper.predict import ensemble_probabilities

    two_tasks.prompts["sentiment"].temperature = 0.5
    two_tasks.prompts["topic"].temperature = 2.0
    singles = []
    for name in ("sentiment", "topic"):
        two_tasks.set_active_prompt(name)
        logits = predict_logits(two_tasks, tokenizer, TEXTS)
        singles.append(torch.softmax(logits / two_tasks.prompts[name].temperature, dim=-1))
    mean = torch.stack(singles).mean(0)  # (n, C)
    probs = ensemble_probabilities(
        two_tasks, tokenizer, TEXTS, ["sentiment", "topic"], temperatures=[0.5, 2.0], batch_size=2
    )
    assert torch.allclose(probs, mean, atol=1e-6)
    preds = two_tasks.predict(TEXTS, prompts=["sentiment", "topic"])
    assert [p.label for p in preds] == mean.argmax(-1).tolist()
    assert torch.allclose(torch.tensor([p.confidence for p in preds]), mean.max(-1).values, atol=1e-6)
    assert [p.label_name for p in preds] == [f"LABEL_{p.label}" for p in preds]
    assert two_tasks.predict([], prompts=["topic"]) == []


@pytest.mark.parametrize(("batch_size", "calls"), [(32, [5, 5]), (2, [2, 2, 2, 2, 1, 1])])
def test_ensemble_runs_each_prompt_once_per_batch_on_its_rows(two_tasks, tokenizer, batch_size, calls):
    rows = []
    # the first layer sees every backbone pass: per batch, one per prompt over that prompt's rows
    hook = two_tasks.model.bert.encoder.layer[0].register_forward_pre_hook(
        lambda m, args: rows.append(args[0].shape[0])
    )
    try:
        two_tasks.predict(TEXTS, prompts=["sentiment", "topic"], batch_size=batch_size)
    finally:
        hook.remove()
    assert rows == calls  # every text once per prompt: as many rows as one mixed pass, no more


def test_ensemble_errors(two_tasks, tokenizer, tmp_path):
    with pytest.raises(KeyError, match="no prompt named 'nope'"):
        two_tasks.predict(TEXTS, prompts=["topic", "nope"])
    for bad in ([], "topic", ["topic", "topic"]):
        with pytest.raises(ValueError, match="distinct prompt names"):
            two_tasks.predict(TEXTS, prompts=bad)
    two_tasks.load_prompt(_trained_file(tokenizer, tmp_path, "longer", seed=3, n=6))
    with pytest.raises(ValueError, match="same num_virtual_tokens and placement"):
        two_tasks.predict(TEXTS, prompts=["topic", "longer"])
    two_tasks.prompts["topic"].id2label = {0: "sports", 1: "politics"}
    with pytest.raises(ValueError, match="must share their labels"):
        two_tasks.predict(TEXTS, prompts=["sentiment", "topic"])
