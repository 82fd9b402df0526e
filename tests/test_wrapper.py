"""SoftPromptWrapper on every supported encoder family: parity, placement, length, heads, freezing."""

import pytest
import torch

from softprompt import SoftPromptConfig, SoftPromptWrapper
from tests.conftest import ARCHS, CLS_ID, MAX_POS, SEP_ID, bare_arithmetic, batch, make_model

NO_TOKEN_TYPES = {"distilbert", "modernbert"}


def _inputs(tokenizer, arch, texts=None):
    inputs = batch(tokenizer, texts)
    if arch in NO_TOKEN_TYPES:
        inputs.pop("token_type_ids")
    return inputs


def _by_hand(model, prompt, inputs, at, **extra):
    """Reference: the model called with inputs_embeds built by hand (the chapter's recipe, generalised)."""
    embeds = model.get_input_embeddings()(inputs["input_ids"])  # (B, T, E)
    b, n = embeds.shape[0], prompt.shape[0]
    p = prompt.unsqueeze(0).expand(b, -1, -1)

    def splice(x, v):
        return torch.cat([x[:, :at], v, x[:, at:]], dim=1)

    kwargs = {
        "inputs_embeds": splice(embeds, p),
        "attention_mask": splice(inputs["attention_mask"], torch.ones(b, n, dtype=torch.long)),
    }
    if "token_type_ids" in inputs:
        kwargs["token_type_ids"] = splice(inputs["token_type_ids"], torch.zeros(b, n, dtype=torch.long))
    return model(**kwargs, **extra)


@pytest.mark.parametrize("arch", ARCHS)
def test_prepend_parity_with_hand_built_inputs_embeds(tokenizer, arch):
    model = make_model(arch)
    wrapper = SoftPromptWrapper(
        model, SoftPromptConfig(num_virtual_tokens=5, placement="prepend"), tokenizer=tokenizer
    )
    inputs = _inputs(tokenizer, arch)
    with torch.no_grad():
        ref = _by_hand(model, wrapper.prompts["default"].prompt, inputs, at=0).logits
        fast = wrapper(**inputs).logits  # the default speed levers: float rounding apart, the same
        ours = bare_arithmetic(wrapper)(**inputs).logits
    assert torch.equal(ours, ref)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_after_cls_parity_and_cls_stays_first(tokenizer, arch):
    model = make_model(arch, "base")
    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=3), tokenizer=tokenizer)
    inputs = _inputs(tokenizer, arch)
    assert (inputs["input_ids"][:, 0] == CLS_ID).all()
    with torch.no_grad():
        ours = wrapper(**inputs, output_hidden_states=True)
        ref = _by_hand(model, wrapper.prompts["default"].prompt, inputs, at=1, output_hidden_states=True)
    # position 0 is still [CLS]: the embedding layer's output there is the [CLS] embedding
    assert torch.equal(ours.hidden_states[0], ref.hidden_states[0])
    # the returned features line up with the user's tokens (virtual positions removed)
    assert ours.last_hidden_state.shape[:2] == inputs["input_ids"].shape
    keep = [0, *range(4, ref.last_hidden_state.shape[1])]
    assert torch.equal(ours.last_hidden_state, ref.last_hidden_state[:, keep])


def test_after_cls_falls_back_to_prepend_without_cls(tokenizer, bert_seq):
    wrapper = SoftPromptWrapper(bert_seq, SoftPromptConfig(num_virtual_tokens=3), tokenizer=tokenizer)
    inputs = tokenizer(["great film"], add_special_tokens=False, return_tensors="pt")
    bare_arithmetic(wrapper)
    with torch.no_grad():
        ours = wrapper(**inputs).logits
        ref = _by_hand(bert_seq, wrapper.prompts["default"].prompt, inputs, at=0).logits
    assert torch.equal(ours, ref)


def test_mixed_cls_and_no_cls_batch_is_an_error(tokenizer, bert_seq):
    wrapper = SoftPromptWrapper(bert_seq, SoftPromptConfig(num_virtual_tokens=3), tokenizer=tokenizer)
    ids = torch.tensor([[CLS_ID, 10, SEP_ID], [10, 11, SEP_ID]])
    with pytest.raises(ValueError, match="some inputs start with a \\[CLS\\]"):
        wrapper(input_ids=ids)


def test_after_cls_without_known_cls_id_needs_tokenizer(bert_seq):
    with pytest.raises(
        ValueError,
        match="pass tokenizer=... to SoftPromptWrapper, or use SoftPromptConfig\\(placement='prepend'\\)",
    ):
        SoftPromptWrapper(bert_seq, SoftPromptConfig(num_virtual_tokens=3))
    SoftPromptWrapper(bert_seq, SoftPromptConfig(num_virtual_tokens=3, placement="prepend"))  # fine


def test_token_type_ids_take_the_neighbouring_segment(tokenizer, bert_seq):
    wrapper = SoftPromptWrapper(
        bert_seq, SoftPromptConfig(num_virtual_tokens=2, placement="prepend"), tokenizer=tokenizer
    )
    pair = tokenizer(["great film"], ["dull plot"], return_tensors="pt")
    pair["token_type_ids"] = 1 - pair["token_type_ids"]  # first segment id 1: the prompt must copy it
    seen = {}
    hook = bert_seq.bert.embeddings.register_forward_hook(
        lambda m, args, kw, out: seen.update(kw), with_kwargs=True
    )
    try:
        wrapper(**pair)
    finally:
        hook.remove()
    tt = seen["token_type_ids"]
    assert tt.dtype == pair["token_type_ids"].dtype
    assert tt[0, :2].tolist() == [1, 1]
    assert tt[0, 2:].tolist() == pair["token_type_ids"][0].tolist()


def test_position_ids_are_shifted(tokenizer, bert_seq):
    wrapper = SoftPromptWrapper(bert_seq, SoftPromptConfig(num_virtual_tokens=3), tokenizer=tokenizer)
    inputs = batch(tokenizer, ["great film"])
    t = inputs["input_ids"].shape[1]
    inputs["position_ids"] = torch.arange(t).unsqueeze(0)
    with torch.no_grad():
        shifted = wrapper(**inputs).logits
        default = wrapper(**{k: v for k, v in inputs.items() if k != "position_ids"}).logits
    assert torch.equal(shifted, default)  # 0..T+N-1, what the model does by itself


def test_only_prompt_and_head_train_pooler_frozen(tokenizer, bert_seq):
    wrapper = SoftPromptWrapper(bert_seq, SoftPromptConfig(num_virtual_tokens=4), tokenizer=tokenizer)
    trainable = {n for n, p in wrapper.named_parameters() if p.requires_grad}
    assert trainable == {
        "prompts.default.prompt",
        "prompts.default.heads.classifier.weight",
        "prompts.default.heads.classifier.bias",
    }
    assert not any(p.requires_grad for p in bert_seq.parameters())
    before = {n: p.clone() for n, p in bert_seq.named_parameters()}
    opt = torch.optim.AdamW([p for p in wrapper.parameters() if p.requires_grad], lr=0.1)
    out = wrapper(**batch(tokenizer), labels=torch.tensor([1, 0, 1]))
    out.loss.backward()
    opt.step()
    assert all(torch.equal(before[n], p) for n, p in bert_seq.named_parameters())
    assert wrapper.num_trainable_parameters() == 4 * 32 + 32 * 2 + 2


def test_train_head_false_freezes_but_still_saves_head(tokenizer, bert_seq, tmp_path):
    wrapper = SoftPromptWrapper(
        bert_seq, SoftPromptConfig(num_virtual_tokens=4, train_head=False), tokenizer=tokenizer
    )
    assert wrapper.num_trainable_parameters() == 4 * 32
    wrapper.save_prompt(tmp_path / "p.safetensors")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "p.safetensors"), "pt") as f:
        assert "head.classifier.weight" in set(f.keys())


@pytest.mark.parametrize("arch", ARCHS)
def test_token_classification_labels_and_logits_line_up(tokenizer, arch):
    model = make_model(arch, "token")
    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=3), tokenizer=tokenizer)
    inputs = _inputs(tokenizer, arch)
    labels = torch.randint(0, 2, inputs["input_ids"].shape)
    labels[inputs["attention_mask"] == 0] = -100
    out = wrapper(**inputs, labels=labels)
    assert out.logits.shape[:2] == inputs["input_ids"].shape
    expected = torch.nn.functional.cross_entropy(
        out.logits.reshape(-1, 2), labels.reshape(-1), ignore_index=-100
    )
    assert torch.allclose(out.loss, expected, atol=1e-6)  # virtual positions contributed nothing
    out.loss.backward()
    assert wrapper.prompts["default"].prompt.grad is not None


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("task", ["seq", "token", "base"])
def test_every_family_and_head_trains(tokenizer, arch, task):
    model = make_model(arch, task)
    wrapper = SoftPromptWrapper(
        model, SoftPromptConfig(num_virtual_tokens=4, init="vocab"), tokenizer=tokenizer
    )
    inputs = _inputs(tokenizer, arch)
    if task == "base":
        out = wrapper(**inputs)
        loss = out.last_hidden_state.pow(2).mean()
    else:
        labels = torch.tensor([1, 0, 1]) if task == "seq" else torch.zeros_like(inputs["input_ids"])
        loss = wrapper(**inputs, labels=labels).loss
    loss.backward()
    slot = wrapper.prompts["default"]
    assert slot.prompt.grad is not None and slot.prompt.grad.abs().sum() > 0
    assert all(p.grad is not None for p in slot.heads.parameters())
    assert all(p.grad is None for p in model.parameters())


def test_too_long_input_is_a_clear_error(tokenizer, bert_seq):
    wrapper = SoftPromptWrapper(bert_seq, SoftPromptConfig(num_virtual_tokens=10), tokenizer=tokenizer)
    ids = torch.full((1, MAX_POS - 5), 10)
    ids[0, 0], ids[0, -1] = CLS_ID, SEP_ID
    with pytest.raises(
        ValueError,
        match=r"input of 59 tokens \+ 10 virtual tokens = 69 exceeds the model's 64 positions; tokenize with max_length=54",
    ):
        wrapper(input_ids=ids)


def test_truncate_keeps_final_sep(tokenizer, bert_seq):
    n = 10
    wrapper = SoftPromptWrapper(
        bert_seq, SoftPromptConfig(num_virtual_tokens=n, overflow="truncate"), tokenizer=tokenizer
    )
    bare_arithmetic(wrapper)

    long = torch.randint(10, 50, (2, MAX_POS))
    long[:, 0], long[:, -1] = CLS_ID, SEP_ID
    mask = torch.ones_like(long)
    mask[1, 20:] = 0  # second row is short: padded, left as it is
    long[1, 19], long[1, 20:] = SEP_ID, 0
    out = wrapper(input_ids=long, attention_mask=mask, output_hidden_states=True)
    keep = MAX_POS - n
    cut = torch.cat([long[:, : keep - 1], long[:, -1:]], dim=1)
    cut[1] = long[1, :keep]
    assert cut[0, -1] == SEP_ID
    with torch.no_grad():
        ref = _by_hand(
            bert_seq,
            wrapper.prompts["default"].prompt,
            {"input_ids": cut, "attention_mask": mask[:, :keep]},
            at=1,
        )
    assert torch.equal(out.logits, ref.logits)


def test_tokenize_reserves_room_for_the_prompt(tokenizer, bert_seq):
    wrapper = SoftPromptWrapper(bert_seq, SoftPromptConfig(num_virtual_tokens=10), tokenizer=tokenizer)
    text = " ".join(["great"] * 200)
    enc = wrapper.tokenize([text, "dull"])
    assert enc["input_ids"].shape[1] == MAX_POS - 10
    assert enc["input_ids"][0, -1] == SEP_ID
    assert wrapper.tokenize([text], max_length=32)["input_ids"].shape[1] == 22
    wrapper(**enc)  # fits
    with pytest.raises(ValueError, match="leaves no room"):
        wrapper.max_input_length(11)


def test_too_many_virtual_tokens_are_refused_before_anything_is_allocated(tokenizer, bert_seq):
    with pytest.raises(ValueError, match="between 1 and 65,536"):
        SoftPromptConfig(num_virtual_tokens=10**18)  # once an allocation traceback
    with pytest.raises(ValueError, match=rf"{MAX_POS} positions leave no room .* \(at most {MAX_POS - 2}\)"):
        SoftPromptWrapper(bert_seq, SoftPromptConfig(num_virtual_tokens=MAX_POS - 1), tokenizer=tokenizer)


def test_bad_arguments(tokenizer, bert_seq):
    with pytest.raises(TypeError, match="needs a transformers model"):
        SoftPromptWrapper("bert-base-uncased")
    with pytest.raises(TypeError, match="config must be a SoftPromptConfig"):
        SoftPromptWrapper(bert_seq, {"num_virtual_tokens": 3}, tokenizer=tokenizer)
    wrapper = SoftPromptWrapper(bert_seq, tokenizer=tokenizer)
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        wrapper()
    with pytest.raises(ValueError, match="must be \\(batch, seq_len\\)"):
        wrapper(input_ids=torch.tensor([2, 10, 3]))
    with pytest.raises(ValueError, match="tokenize\\(\\) needs a tokenizer"):
        SoftPromptWrapper(bert_seq, SoftPromptConfig(placement="prepend")).tokenize(["x"])


def test_inputs_embeds_path_matches_input_ids(tokenizer, bert_seq):
    wrapper = SoftPromptWrapper(bert_seq, SoftPromptConfig(num_virtual_tokens=3), tokenizer=tokenizer)
    inputs = batch(tokenizer)
    with torch.no_grad():
        by_ids = wrapper(**inputs).logits
        embeds = bert_seq.get_input_embeddings()(inputs.pop("input_ids"))
        by_embeds = wrapper(inputs_embeds=embeds, **inputs).logits
    assert torch.equal(by_ids, by_embeds)


@pytest.mark.parametrize("arch", ["bert", "roberta", "distilbert"])
def test_bf16_backbone_keeps_fp32_master_prompt_and_head(tokenizer, arch):
    model = make_model(arch)
    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=3), tokenizer=tokenizer)
    inputs = _inputs(tokenizer, arch)
    with torch.no_grad():
        fp32 = wrapper(**inputs).logits
    wrapper.cast_backbone(torch.bfloat16)
    assert wrapper.backbone_dtype == torch.bfloat16
    out = wrapper(**inputs, labels=torch.tensor([1, 0, 1]))
    assert out.logits.dtype == torch.float32  # head computed in fp32
    assert torch.allclose(out.logits, fp32, atol=0.05)
    out.loss.backward()
    slot = wrapper.prompts["default"]
    assert slot.prompt.dtype == torch.float32 and slot.prompt.grad.dtype == torch.float32
    assert all(p.dtype == torch.float32 and p.grad is not None for p in slot.heads.parameters())
    with pytest.raises(ValueError, match="floating torch.dtype"):
        wrapper.cast_backbone(torch.int8)
