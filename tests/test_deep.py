"""Deep prompts: vectors at every layer's input, on every family, checked against references; files and errors."""

import copy
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from softprompt import SoftPromptConfig, SoftPromptWrapper, read_prompt_file
from softprompt.models.deep import find_layer_stack
from tests.conftest import ARCHS, HIDDEN, batch, make_model, model_config

LAYERS = 3  # three layers, so two of them take deep vectors and a mix-up of layers shows
N = 3
NO_TOKEN_TYPES = {"distilbert", "modernbert"}
REPO = Path(__file__).resolve().parents[1]
LAYER_LISTS = {
    "distilbert": "transformer.layer",
    "albert": "encoder.albert_layer_groups",
    "modernbert": "layers",
}


def _model(arch="bert", task="seq", **kwargs):
    return make_model(arch, task, num_layers=LAYERS, **kwargs)


def _inputs(tokenizer, arch, texts=None):
    inputs = batch(tokenizer, texts)
    if arch in NO_TOKEN_TYPES:
        inputs.pop("token_type_ids")
    return inputs


def _deep(model, tokenizer, **config):
    config = {"num_virtual_tokens": N, "deep": True, **config}
    return SoftPromptWrapper(model, SoftPromptConfig(**config), tokenizer=tokenizer)


def _randomise(slot, seed=0):
    with torch.no_grad():
        slot.deep.vectors.normal_(generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("arch", ARCHS)
def test_layers_are_found_without_module_names(arch):
    stack = find_layer_stack(_model(arch))
    assert stack.path == LAYER_LISTS.get(arch, "encoder.layer")
    assert stack.num_layers == LAYERS and stack.hidden_size == HIDDEN
    assert stack.mean.shape == stack.std.shape == (LAYERS - 1, HIDDEN)
    assert len(stack.modules) == (1 if arch == "albert" else LAYERS)  # ALBERT: one shared group


def test_albert_outer_shared_group_is_chosen_over_the_layers_inside_it():
    config = model_config("albert", num_layers=LAYERS)
    config.inner_group_num = 2  # the inner list now runs 2 * LAYERS times, the outer one LAYERS times
    stack = find_layer_stack(transformers.AlbertForSequenceClassification(config).eval())
    assert stack.path == "encoder.albert_layer_groups" and len(stack.modules) == 1


@pytest.mark.parametrize("arch", ARCHS)
def test_replacing_with_what_was_there_changes_nothing(tokenizer, arch):
    """Reference: each layer's own hidden states (HF's output_hidden_states) as deep vectors give the shallow output.

    Bitwise: the splice puts back the same values. Vectors off by one layer would change the logits.
    """
    model = _model(arch, "base")  # features, not a tiny random head's near-constant logits
    shallow = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=N), tokenizer=tokenizer)
    deep = _deep(model, tokenizer)  # same config otherwise, so the same input prompt
    assert torch.equal(shallow.prompts["default"].prompt, deep.prompts["default"].prompt)
    one = {k: v[:1] for k, v in _inputs(tokenizer, arch).items()}  # per-example hidden states: one example
    with torch.no_grad():
        ref = shallow(**one, output_hidden_states=True)  # deep's hooks stay out of a shallow forward
        at = 1  # after_cls
        seen = torch.stack([ref.hidden_states[i][0, at : at + N] for i in range(1, LAYERS)])  # (L - 1, N, H)
        deep.prompts["default"].deep.vectors.copy_(seen)
        same = deep(**one, output_hidden_states=True)
        assert torch.equal(same.last_hidden_state, ref.last_hidden_state)
        assert torch.equal(same.hidden_states[-1], ref.hidden_states[-1])  # virtual positions too
        deep.prompts["default"].deep.vectors.copy_(seen.flip(0))  # layer 1 gets layer 2's, and back
        swapped = deep(**one, output_hidden_states=True).hidden_states[-1]
        assert not torch.equal(
            swapped, ref.hidden_states[-1]
        )  # (random ModernBERT layers barely move states)


def test_bert_matches_layers_called_by_hand(tokenizer):
    model = _model("bert")
    wrapper = _deep(model, tokenizer)
    slot = wrapper.prompts["default"]
    _randomise(slot)
    inputs = batch(tokenizer)  # padded: the mask matters
    with torch.no_grad():
        ours = wrapper(**inputs).logits

        ids, mask, tt = inputs["input_ids"], inputs["attention_mask"], inputs["token_type_ids"]
        b = ids.shape[0]

        def splice(x, v):
            return torch.cat([x[:, :1], v, x[:, 1:]], dim=1)

        embeds = splice(model.get_input_embeddings()(ids), slot.prompt.expand(b, -1, -1))
        mask = splice(mask, torch.ones(b, N, dtype=mask.dtype))
        tt = splice(tt, torch.zeros(b, N, dtype=tt.dtype))
        captured = {}
        layers = model.bert.encoder.layer
        hook = layers[0].register_forward_pre_hook(
            lambda m, args, kwargs: captured.update(args=args, kwargs=kwargs), with_kwargs=True
        )
        try:
            model(inputs_embeds=embeds, attention_mask=mask, token_type_ids=tt)  # to get the model's own mask
        finally:
            hook.remove()
        hidden, rest, kwargs = captured["args"][0], captured["args"][1:], captured["kwargs"]
        for i, layer in enumerate(layers):
            if i > 0:
                hidden = torch.cat(
                    [hidden[:, :1], slot.deep.vectors[i - 1].expand(b, -1, -1), hidden[:, 1 + N :]], 1
                )
            out = layer(hidden, *rest, **kwargs)
            hidden = out[0] if isinstance(out, tuple) else out
        ref = model.classifier(model.bert.pooler(hidden))
    assert torch.allclose(ours, ref, atol=1e-6), (ours - ref).abs().max()


@pytest.mark.parametrize("arch", ARCHS)
def test_every_family_trains_every_layer(tokenizer, arch):
    model = _model(arch)
    wrapper = _deep(model, tokenizer)
    slot = wrapper.prompts["default"]
    loss = wrapper(**_inputs(tokenizer, arch), labels=torch.tensor([1, 0, 1])).loss
    loss.backward()
    per_layer = slot.deep.vectors.grad.flatten(1).norm(dim=1)  # (L - 1,)
    assert per_layer.shape == (LAYERS - 1,) and (per_layer > 0).all(), per_layer
    assert slot.prompt.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())
    assert wrapper.num_trainable_parameters() == slot.prompt.numel() + (LAYERS - 1) * N * HIDDEN + sum(
        p.numel() for p in slot.heads.parameters()
    )


def test_deep_vectors_change_the_output_and_start_at_the_layers_scale(tokenizer):
    model = _model("bert", "base")
    shallow = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=N), tokenizer=tokenizer)
    deep = _deep(model, tokenizer)
    vectors = deep.prompts["default"].deep.vectors
    stack = deep._stack()
    assert torch.allclose(vectors.std(), stack.std.mean(), rtol=0.5)  # like real hidden states there
    assert torch.equal(
        _deep(_model("bert", "base"), tokenizer).prompts["default"].deep.vectors, vectors
    )  # seeded
    inputs = batch(tokenizer)
    with torch.no_grad():
        ours, theirs = deep(**inputs).last_hidden_state, shallow(**inputs).last_hidden_state
    assert not torch.allclose(ours, theirs, atol=1e-2)


def test_hooks_are_inert_outside_the_wrapper_and_removed_with_the_last_deep_prompt(tokenizer, tmp_path):
    model = _model("bert")
    inputs = batch(tokenizer)
    with torch.no_grad():
        before = model(**inputs).logits
    SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=N), tokenizer=tokenizer)
    assert not any(layer._forward_pre_hooks for layer in model.bert.encoder.layer)  # shallow: no hooks
    wrapper = _deep(model, tokenizer, seed=1)
    _randomise(wrapper.prompts["default"])
    assert all(len(layer._forward_pre_hooks) == 1 for layer in model.bert.encoder.layer)
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, before)
    wrapper.load_prompt(wrapper.save_prompt(tmp_path / "deep2.safetensors"))  # a second deep slot: same hooks
    assert all(len(layer._forward_pre_hooks) == 1 for layer in model.bert.encoder.layer)
    shallow_file = SoftPromptWrapper(
        _model("bert"), SoftPromptConfig(num_virtual_tokens=N), tokenizer=tokenizer
    ).save_prompt(tmp_path / "shallow.safetensors")
    wrapper.load_prompt(shallow_file, activate=True)
    wrapper.remove_prompt("default")
    wrapper.remove_prompt("deep2")
    assert not any(layer._forward_pre_hooks for layer in model.bert.encoder.layer)


def test_mixed_batch_of_deep_and_shallow_prompts_equals_separate_runs(tokenizer, tmp_path):
    model = _model("bert")
    wrapper = _deep(model, tokenizer, seed=1)
    _randomise(wrapper.prompts["default"], seed=1)
    other = _deep(_model("bert"), tokenizer, seed=2)
    _randomise(other.prompts["default"], seed=2)
    wrapper.load_prompt(other.save_prompt(tmp_path / "other.safetensors"))
    shallow = SoftPromptWrapper(
        _model("bert"), SoftPromptConfig(num_virtual_tokens=N, seed=3), tokenizer=tokenizer
    )
    wrapper.load_prompt(shallow.save_prompt(tmp_path / "shallow.safetensors"))
    inputs = batch(tokenizer, ["great film", "dull", "the worst movie i ever watch really", "superb acting"])
    names = ["other", "shallow", "default", "other"]
    labels = torch.tensor([1, 0, 1, 0])
    mixed = wrapper(**inputs, prompt_names=names, labels=labels)
    with torch.no_grad():
        separate = {}
        for name in set(names):
            wrapper.set_active_prompt(name)
            separate[name] = wrapper(**inputs).logits
    for i, name in enumerate(names):
        assert torch.allclose(mixed.logits[i], separate[name][i], atol=1e-6), name
    mixed.loss.backward()
    for name in ("default", "other"):
        assert (wrapper.prompts[name].deep.vectors.grad.flatten(1).norm(dim=1) > 0).all()


def _trained(wrapper, tokenizer, arch="bert", steps=3):
    opt = torch.optim.AdamW([p for p in wrapper.parameters() if p.requires_grad], lr=0.05)
    for _ in range(steps):
        wrapper(**_inputs(tokenizer, arch), labels=torch.tensor([1, 0, 1])).loss.backward()
        opt.step()
        opt.zero_grad()
    return wrapper


def test_save_load_bitwise_identical_and_file_layout(tokenizer, tmp_path):
    wrapper = _trained(_deep(_model("bert", seed=5), tokenizer, init="random"), tokenizer)
    path = wrapper.save_prompt(tmp_path / "deep.safetensors")
    with safe_open(str(path), "pt") as f:
        meta, keys = f.metadata(), set(f.keys())
        stored = f.get_tensor("deep_prompts")
    assert keys == {"prompt_embeddings", "deep_prompts", "head.classifier.weight", "head.classifier.bias"}
    assert stored.dtype == torch.float32 and stored.shape == (LAYERS - 1, N, HIDDEN)
    assert meta["num_layers"] == str(LAYERS) and meta["hidden_size"] == str(HIDDEN)
    assert '"deep": true' in meta["config"]
    fresh = _model("bert", seed=5)
    torch.nn.init.normal_(fresh.classifier.weight)  # the head must come from the file
    loaded = SoftPromptWrapper.from_prompt(fresh, path, tokenizer=tokenizer)
    inputs = batch(tokenizer)
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, wrapper(**inputs).logits)
    with torch.no_grad():
        assert torch.equal(copy.deepcopy(wrapper)(**inputs).logits, wrapper(**inputs).logits)
    # reload in place keeps the parameter objects (what checkpoint resume relies on)
    vectors = wrapper.prompts["default"].deep.vectors
    with torch.no_grad():
        vectors.add_(1.0)
    wrapper.reload_prompt(path)
    assert wrapper.prompts["default"].deep.vectors is vectors and torch.equal(vectors, stored)


CHILD = textwrap.dedent(
    """
    import sys, torch
    from softprompt import SoftPromptWrapper
    from tests.conftest import batch, make_model, make_tokenizer
    tok = make_tokenizer()
    model = make_model("albert", seed=123, num_layers=3)
    torch.nn.init.normal_(model.classifier.weight)
    wrapper = SoftPromptWrapper.from_prompt(model, sys.argv[1], tokenizer=tok)
    with torch.no_grad():
        torch.save(wrapper(**batch(tok)).logits, sys.argv[2])  # test artefact only; prompts never use pickle
    """
)


def test_fresh_process_bitwise_identical_albert(tokenizer, tmp_path):
    wrapper = _trained(_deep(_model("albert", seed=123), tokenizer, init="random"), tokenizer, "albert")
    path = wrapper.save_prompt(tmp_path / "p.safetensors")
    with torch.no_grad():
        expected = wrapper(**batch(tokenizer)).logits
    out = tmp_path / "logits.pt"
    subprocess.run([sys.executable, "-c", CHILD, str(path), str(out)], cwd=REPO, check=True, timeout=120)
    got = torch.load(out, weights_only=True)
    assert torch.equal(got, expected), (got - expected).abs().max()


def _deep_step_change(wrapper, tokenizer, lr=1e-2):
    """Mean |change| of the folded deep vectors after one AdamW step at ``lr`` (the library's default)."""
    deep = wrapper.prompts["default"].deep
    before = deep.folded()
    optimizer = torch.optim.AdamW(
        [p for p in wrapper.parameters() if p.requires_grad], lr=lr, weight_decay=0.0
    )
    wrapper.train()(**batch(tokenizer), labels=torch.tensor([1, 0, 1])).loss.backward()
    optimizer.step()
    return (deep.folded() - before).abs().mean().item()


def test_reparam_moves_the_deep_vectors_at_plain_vectors_pace(tokenizer):
    """The MLP of ``deep_reparam_hidden`` made of ``nn.Linear`` moved the vectors ~40-60x further a step than
    plain vectors at the same learning rate (on MiniLM, CoNLL-2003 then never left F1 0); now within 3x."""
    width = 256
    plain = _deep_step_change(_deep(_model("bert"), tokenizer), tokenizer)
    reparam = _deep(_model("bert"), tokenizer, deep_reparam_hidden=width)
    unscaled = copy.deepcopy(reparam)  # the same function, as the nn.Linear layout computed it
    encoder = unscaled.prompts["default"].deep.encoder
    for i in (0, 2):
        linear = torch.nn.Linear(encoder[i].in_features, encoder[i].out_features)
        with torch.no_grad():
            linear.weight.copy_(encoder[i].scaled_weight / encoder[i].in_features)
            linear.bias.copy_(encoder[i].bias)
        encoder[i] = linear
    torch.testing.assert_close(
        unscaled.prompts["default"].deep.folded(), reparam.prompts["default"].deep.folded()
    )
    assert _deep_step_change(unscaled, tokenizer) > 20 * plain  # the failure, reproduced
    assert _deep_step_change(reparam, tokenizer) < 3 * plain


def test_reparam_trains_folds_on_save_and_resumes_exactly(tokenizer, tmp_path):
    width = 8
    wrapper = _deep(_model("bert"), tokenizer, deep_reparam_hidden=width)
    slot = wrapper.prompts["default"]
    assert slot.deep.reparam
    mlp = N * HIDDEN + (HIDDEN * width + width) + (width * (LAYERS - 1) * HIDDEN + (LAYERS - 1) * HIDDEN)
    head = sum(p.numel() for p in slot.heads.parameters())
    assert wrapper.num_trainable_parameters() == slot.prompt.numel() + mlp + head
    wrapper(**batch(tokenizer), labels=torch.tensor([1, 0, 1])).loss.backward()
    assert slot.deep.base.grad.abs().sum() > 0  # gradients go through the MLP to its base
    _trained(wrapper, tokenizer)
    inputs = batch(tokenizer)
    with torch.no_grad():
        expected = wrapper(**inputs).logits
    path = wrapper.save_prompt(tmp_path / "reparam.safetensors")
    pf = read_prompt_file(path)
    assert torch.equal(pf.deep_prompts, slot.deep.folded())
    assert sorted(pf.deep_reparam) == sorted(slot.deep.state_dict())

    loaded = SoftPromptWrapper.from_prompt(_model("bert"), path, tokenizer=tokenizer)
    plain = loaded.prompts["default"].deep
    assert not plain.reparam and plain.vectors.shape == (LAYERS - 1, N, HIDDEN)  # runs without the MLP
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, expected)

    # resume: the MLP's own state comes back, in place
    base = slot.deep.base
    with torch.no_grad():
        for p in slot.deep.parameters():
            p.add_(0.3)
    wrapper.reload_prompt(path)
    assert slot.deep.base is base
    with torch.no_grad():
        assert torch.equal(wrapper(**inputs).logits, expected)
    with pytest.raises(ValueError, match="does not hold that MLP's state"):
        wrapper.reload_prompt(loaded.save_prompt(tmp_path / "folded.safetensors"))
    # a file from the unscaled layout (nn.Linear: encoder.N.weight) is refused, never read as scaled weights
    tensors = load_file(path)
    with safe_open(path, "pt") as f:
        metadata = f.metadata()
    for key in [k for k in tensors if k.endswith(".scaled_weight")]:
        tensors[key.replace(".scaled_weight", ".weight")] = tensors.pop(
            key
        )  # the names decide, not the values
    save_file(tensors, tmp_path / "old-layout.safetensors", metadata=metadata)
    with pytest.raises(ValueError, match="another layout"):
        wrapper.reload_prompt(tmp_path / "old-layout.safetensors")

    wrapper.fold_deep_reparam()
    assert not wrapper.prompts["default"].deep.reparam
    assert wrapper.num_trainable_parameters() == slot.prompt.numel() + (LAYERS - 1) * N * HIDDEN + head
    with torch.no_grad():
        assert torch.equal(wrapper(**inputs).logits, expected)
    with pytest.raises(ValueError, match="no deep prompt trained through an MLP"):
        wrapper.fold_deep_reparam()


def test_bf16_backbone_keeps_fp32_deep_vectors(tokenizer):
    wrapper = _deep(_model("bert"), tokenizer)
    inputs = batch(tokenizer)
    with torch.no_grad():
        fp32 = wrapper(**inputs).logits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no native bf16" on some CPUs; the test is about dtypes
        wrapper.cast_backbone(torch.bfloat16)
    out = wrapper(**inputs, labels=torch.tensor([1, 0, 1]))
    assert torch.allclose(out.logits, fp32, atol=0.05)
    out.loss.backward()
    vectors = wrapper.prompts["default"].deep.vectors
    assert vectors.dtype == torch.float32 and vectors.grad.dtype == torch.float32


def test_gradient_checkpointing_gives_the_same_gradients(tokenizer):
    grads = []
    for checkpointing in (False, True):
        model = _model("bert")
        if checkpointing:
            enable = (
                getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
            )
            enable()
            assert model.bert.encoder.layer[1].gradient_checkpointing  # a replay would re-run an inert hook
        wrapper = _deep(model, tokenizer).train()  # checkpointing is on in training mode only; dropout is 0
        wrapper(**batch(tokenizer), labels=torch.tensor([1, 0, 1])).loss.backward()
        grads.append(wrapper.prompts["default"].deep.vectors.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_deep_prompts_ensemble(tokenizer, tmp_path):
    wrapper = _deep(_model("bert"), tokenizer, seed=1)
    other = _deep(_model("bert"), tokenizer, seed=2)
    _randomise(other.prompts["default"], seed=2)
    wrapper.load_prompt(other.save_prompt(tmp_path / "b.safetensors"))
    texts = ["great film", "dull", "superb acting , great plot"]
    preds = wrapper.predict(texts, prompts=["default", "b"])
    from softprompt.inference import predict_logits

    probs = []
    for name in ("default", "b"):
        wrapper.set_active_prompt(name)
        probs.append(torch.softmax(predict_logits(wrapper, tokenizer, texts), -1))
    mean = torch.stack(probs).mean(0)
    assert [p.label for p in preds] == mean.argmax(-1).tolist()
    assert torch.allclose(torch.tensor([p.confidence for p in preds]), mean.max(-1).values, atol=1e-6)


# ---------------------------------------------------------------- files and errors


@pytest.fixture
def deep_file(tokenizer, tmp_path):
    return _deep(_model("bert"), tokenizer).save_prompt(tmp_path / "deep.safetensors")


def _rewrite(path, tensors=None, metadata=None, drop=()):
    data = load_file(str(path))
    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata())
    data.update(tensors or {})
    meta.update(metadata or {})
    for key in drop:
        data.pop(key, None)
        meta.pop(key, None)
    save_file(data, str(path), metadata=meta)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"drop": ["deep_prompts"]}, "config has deep=True but there is no 'deep_prompts' tensor"),
        (
            {"tensors": {"deep_prompts": torch.full((2, N, HIDDEN), float("nan"))}},
            "'deep_prompts' has 192 NaN/inf",
        ),
        (
            {"tensors": {"deep_prompts": torch.zeros(3, N, HIDDEN)}},
            "metadata says num_layers=3, hidden_size=32",
        ),
        ({"tensors": {"deep_prompts": torch.zeros(2, N, 48)}}, "metadata says num_layers=3, hidden_size=32"),
        (
            {"tensors": {"deep_prompts": torch.zeros(2, N + 1, HIDDEN)}},
            "should be \\(num_layers - 1, 3 virtual",
        ),
        ({"drop": ["num_layers"]}, "unreadable prompt metadata"),
        (
            {"tensors": {"deep_reparam.base": torch.zeros(N, HIDDEN)}},
            "trains the deep vectors through no MLP",
        ),
        ({"metadata": {"config": SoftPromptConfig(num_virtual_tokens=N).to_json()}}, "config has deep=False"),
    ],
)
def test_corrupt_deep_files_are_rejected_naming_the_file(deep_file, change, needle):
    _rewrite(deep_file, **change)
    with pytest.raises(ValueError, match=needle) as err:
        read_prompt_file(deep_file)
    assert str(deep_file) in str(err.value)


def test_deep_file_against_another_model(deep_file, tokenizer, tmp_path):
    with pytest.raises(
        ValueError, match="deep prompt has vectors for 3 layers but BertForSequenceClassification has 2"
    ):
        SoftPromptWrapper.from_prompt(make_model("bert"), deep_file, tokenizer=tokenizer)
    target = SoftPromptWrapper(make_model("bert"), tokenizer=tokenizer)
    with pytest.raises(ValueError, match=str(deep_file)):
        target.load_prompt(deep_file)
    assert target.prompt_names == ["default"]

    # same embedding size (16), other hidden size: only the deep vectors can tell
    small = SoftPromptWrapper(
        _model("electra", "base"), SoftPromptConfig(num_virtual_tokens=N, deep=True), tokenizer=tokenizer
    )
    path = small.save_prompt(tmp_path / "electra.safetensors")
    config = model_config("electra", num_layers=LAYERS)
    config.hidden_size, config.intermediate_size = 48, 48
    wide = transformers.AutoModel.from_config(config)
    with pytest.raises(
        ValueError, match="deep prompt has hidden size 32 but ElectraModel's hidden size is 48"
    ):
        SoftPromptWrapper.from_prompt(wide, path, tokenizer=tokenizer)


def test_shallow_files_and_reload_rules(tokenizer, deep_file, tmp_path):
    wrapper = SoftPromptWrapper(_model("bert"), SoftPromptConfig(num_virtual_tokens=N), tokenizer=tokenizer)
    shallow = wrapper.save_prompt(tmp_path / "shallow.safetensors")
    with safe_open(str(shallow), "pt") as f:
        assert "deep_prompts" not in set(f.keys()) and "num_layers" not in f.metadata()
    assert read_prompt_file(shallow).deep_prompts is None
    with pytest.raises(ValueError, match="deep=... differ from slot 'default'"):
        wrapper.reload_prompt(deep_file)


def test_config_and_model_errors(tokenizer):
    with pytest.raises(ValueError, match="set deep=True as well"):
        SoftPromptConfig(deep_reparam_hidden=16)
    with pytest.raises(ValueError, match="deep_reparam_hidden must be a positive int"):
        SoftPromptConfig(deep=True, deep_reparam_hidden=0)
    with pytest.raises(ValueError, match="deep must be True or False"):
        SoftPromptConfig(deep="yes")
    cfg = SoftPromptConfig(deep=True, deep_reparam_hidden=16)
    assert SoftPromptConfig.from_json(cfg.to_json()) == cfg
    assert SoftPromptConfig.from_dict({"num_virtual_tokens": 4}).deep is False  # old files: shallow
    with pytest.raises(ValueError, match="need at least 2 layers"):
        _deep(make_model("bert", num_layers=1), tokenizer)


def test_peft_export_refuses_deep_prompts(tokenizer, tmp_path):
    from softprompt import export_peft_adapter

    wrapper = _deep(_model("bert"), tokenizer, placement="prepend")
    with pytest.raises(ValueError, match="deep prompt"):
        export_peft_adapter(wrapper, tmp_path / "adapter")
