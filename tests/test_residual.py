"""Residual prompts (``SoftPromptConfig(residual_hidden=...)``): the MLP in training, folded in files, exact."""

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from softprompt import SoftPromptConfig, SoftPromptWrapper, read_prompt_file, train_prompt
from softprompt.models.residual import ResidualMLP
from tests.conftest import HIDDEN, after_cls_reference, batch, make_model
from tests.test_trainer import learnable_wrapper, toy  # noqa: F401 (the toy fixture)

N = 4
WIDTH = 8


def _wrapper(tokenizer, model=None, **config):
    config = {"num_virtual_tokens": N, "residual_hidden": WIDTH, **config}
    return SoftPromptWrapper(model or make_model(), SoftPromptConfig(**config), tokenizer=tokenizer)


def _perturb(slot, seed=0):
    """Move the MLP off its identity start, as training does."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in slot.residual.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen))


def test_starts_as_its_initialisation_and_matches_the_bare_model(tokenizer):
    plain = SoftPromptWrapper(make_model(), SoftPromptConfig(num_virtual_tokens=N), tokenizer=tokenizer)
    residual = _wrapper(tokenizer)
    slot = residual.slot()
    assert torch.equal(slot.prompt, plain.slot().prompt)  # the same init draw
    assert torch.equal(slot.vectors(), slot.prompt)  # zero LayerNorm gain: the identity at step 0
    _perturb(slot)
    vectors = slot.vectors()
    assert not torch.allclose(vectors, slot.prompt)
    inputs = batch(tokenizer)
    with torch.no_grad():
        got = residual(**inputs).logits
        want = after_cls_reference(residual.model, vectors, inputs).logits  # the bare model, spliced by hand
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_gradients_reach_the_mlp_and_the_vectors(tokenizer):
    wrapper = _wrapper(tokenizer)
    slot = wrapper.slot()
    wrapper(**batch(tokenizer), labels=torch.tensor([1, 0, 1])).loss.backward()
    assert slot.prompt.grad.abs().sum() > 0
    assert slot.residual.norm.weight.grad.abs().sum() > 0  # the gain learns from the first step
    mlp = WIDTH * HIDDEN + WIDTH + HIDDEN * WIDTH + HIDDEN + 2 * HIDDEN
    head = sum(p.numel() for p in slot.heads.parameters())
    assert wrapper.num_trainable_parameters() == N * HIDDEN + mlp + head


def test_folded_file_predicts_exactly_what_the_module_predicted(tokenizer, tmp_path):
    wrapper = _wrapper(tokenizer)
    slot = wrapper.slot()
    _perturb(slot)
    inputs = batch(tokenizer)
    with torch.no_grad():
        expected = wrapper(**inputs).logits
    path = wrapper.save_prompt(tmp_path / "residual.safetensors")
    pf = read_prompt_file(path)
    assert torch.equal(pf.prompt, slot.vectors().detach())  # folded
    assert torch.equal(pf.prompt_reparam["prompt"], slot.prompt.detach())  # training state rides along
    assert sorted(pf.prompt_reparam) == [
        "prompt",
        *sorted(f"residual.{k}" for k in slot.residual.state_dict()),
    ]

    loaded = SoftPromptWrapper.from_prompt(make_model(), path, tokenizer=tokenizer)
    assert loaded.slot().residual is None  # runs without the MLP
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, expected)

    # resume: the raw vectors and the MLP come back in place
    prompt, gain = slot.prompt, slot.residual.norm.weight
    with torch.no_grad():
        for p in slot.parameters():
            p.add_(0.3)
    wrapper.reload_prompt(path)
    assert slot.prompt is prompt and slot.residual.norm.weight is gain
    with torch.no_grad():
        assert torch.equal(wrapper(**inputs).logits, expected)
    with pytest.raises(ValueError, match="does not hold that MLP's state"):
        wrapper.reload_prompt(loaded.save_prompt(tmp_path / "folded.safetensors"))

    wrapper.fold_reparam()
    assert slot.residual is None
    with torch.no_grad():
        assert torch.equal(wrapper(**inputs).logits, expected)
    with pytest.raises(ValueError, match="trains through no MLP"):
        wrapper.fold_reparam()


def test_deep_vectors_train_through_their_own_residual_mlp(tokenizer, tmp_path):
    wrapper = _wrapper(tokenizer, deep=True)
    slot = wrapper.slot()
    assert slot.deep.reparam and isinstance(slot.deep.residual, ResidualMLP)
    assert torch.equal(slot.deep(), slot.deep.vectors)  # identity at the start
    wrapper(**batch(tokenizer), labels=torch.tensor([1, 0, 1])).loss.backward()
    assert slot.deep.residual.norm.weight.grad.abs().sum() > 0
    _perturb(slot)
    _perturb(slot.deep, seed=1)
    inputs = batch(tokenizer)
    with torch.no_grad():
        expected = wrapper(**inputs).logits
    path = wrapper.save_prompt(tmp_path / "deep.safetensors")
    pf = read_prompt_file(path)
    assert torch.equal(pf.deep_prompts, slot.deep.folded())
    loaded = SoftPromptWrapper.from_prompt(make_model(), path, tokenizer=tokenizer)
    assert not loaded.slot().deep.reparam
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, expected)


def test_training_folds_at_the_end_and_the_file_reproduces_the_evaluation(tokenizer, toy, tmp_path):  # noqa: F811
    wrapper = learnable_wrapper(tokenizer, residual_hidden=WIDTH)
    result = train_prompt(
        wrapper, toy, toy, output_dir=tmp_path, learning_rate=0.05, per_device_train_batch_size=8,
        num_train_epochs=2, disable_tqdm=True, logging_strategy="epoch",
    )  # fmt: skip
    slot = wrapper.slot()
    assert slot.residual is None  # folded when training ended
    pf = read_prompt_file(result.prompt_path)
    assert not pf.prompt_reparam and torch.equal(pf.prompt, slot.prompt.detach())
    assert pf.config.residual_hidden == WIDTH  # the file says how it was trained
    inputs = batch(tokenizer)
    loaded = SoftPromptWrapper.from_prompt(
        learnable_wrapper(tokenizer).model, result.prompt_path, tokenizer=tokenizer
    )
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, wrapper(**inputs).logits)
    # the checkpoints kept the unfolded state, so a resumed run continues through the MLP
    ckpt = read_prompt_file(next(tmp_path.glob("checkpoint-*")) / "prompt.safetensors")
    assert "prompt" in ckpt.prompt_reparam


def test_exports_use_the_vectors_the_forward_uses(tokenizer, tmp_path):
    from softprompt.wrapper.peft import export_peft_adapter

    wrapper = _wrapper(tokenizer, placement="prepend")  # PEFT's layout
    _perturb(wrapper.slot())
    folder = export_peft_adapter(wrapper, tmp_path / "adapter")
    exported = load_file(next(folder.glob("*.safetensors")))
    (prompt,) = [t for k, t in exported.items() if "prompt" in k]
    assert torch.equal(prompt, wrapper.slot().vectors().detach())  # folded, not the raw parameter


def test_config_and_file_errors(tokenizer, tmp_path):
    with pytest.raises(ValueError, match="residual_hidden must be a positive int"):
        SoftPromptConfig(residual_hidden=0)
    with pytest.raises(ValueError, match="set one of them"):
        SoftPromptConfig(deep=True, deep_reparam_hidden=8, residual_hidden=8)
    path = _wrapper(tokenizer).save_prompt(tmp_path / "r.safetensors")
    tensors = load_file(path)
    with safe_open(str(path), framework="pt") as f:  # keep the metadata, change one tensor
        meta = f.metadata()
    bad = dict(tensors)
    bad["prompt_reparam.prompt"] = torch.zeros(N + 1, HIDDEN)
    save_file(bad, tmp_path / "bad.safetensors", metadata=meta)
    with pytest.raises(ValueError, match="unfolded vectors"):
        read_prompt_file(tmp_path / "bad.safetensors")
    plain_meta = dict(meta)
    plain_meta["config"] = SoftPromptConfig(num_virtual_tokens=N).to_json()
    save_file(tensors, tmp_path / "plain.safetensors", metadata=plain_meta)
    with pytest.raises(ValueError, match="residual_hidden=None"):
        read_prompt_file(tmp_path / "plain.safetensors")


def test_merged_export_of_an_unfolded_residual_prompt_predicts_what_the_wrapper_does(tokenizer, tmp_path):
    import transformers

    wrapper = _wrapper(tokenizer)
    _perturb(wrapper.slot())
    folder = wrapper.export_merged(tmp_path / "merged")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    texts = ["great film , superb acting", "dull"]
    with torch.no_grad():
        got = model(**tok(texts, return_tensors="pt", padding=True)).logits
        want = wrapper(**batch(tokenizer, texts)).logits
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
