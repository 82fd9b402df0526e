"""Decoder-only models (GPT-2, Llama, Qwen2, Mistral): padding on either side never changes a prediction.

Every check is against the text run alone, or the bare model run on the text with the prompt vectors
spliced in by hand (after BOS where the family's tokenizer adds one): same logits to 1e-5.
"""

import copy

import pytest
import torch
import transformers

from softprompt import SoftPromptConfig, SoftPromptWrapper
from tests.conftest import make_tokenizer
from tests.decoder_models import (
    DECODERS,
    OPENS_WITH_BOS,
    make_decoder,
    pad_id_of,
    padded,
    spliced_alone,
    texts,
)

N = 3
ATOL = 1e-5
SIDES = ["left", "right"]


def _wrap(model, **config):
    config = {"num_virtual_tokens": N, "init": "random", **config}
    return SoftPromptWrapper(model, SoftPromptConfig(**config)).eval()


def _alone(wrapper, rows, **kwargs):
    """The wrapper's output for each row by itself (no padding)."""
    return [wrapper(input_ids=torch.tensor([row]), **kwargs) for row in rows]


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("family", DECODERS)
def test_sequence_logits_do_not_depend_on_padding(family, side):
    model = make_decoder(family)
    wrapper = _wrap(model)
    rows = texts(family)
    labels = torch.tensor([1, 0, 1, 1])
    with torch.no_grad():
        out = wrapper(**padded(rows, side, pad_id_of(model)), labels=labels)
        alone = torch.cat([o.logits for o in _alone(wrapper, rows)])  # (B, C)
    assert torch.allclose(out.logits, alone, atol=ATOL), (out.logits - alone).abs().max()
    # the model's own loss reads the same pooled logits
    assert torch.allclose(out.loss, torch.nn.functional.cross_entropy(alone, labels), atol=ATOL)


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("family", DECODERS)
def test_sequence_logits_equal_bare_model_with_prompt_spliced_after_bos(family, side):
    model = make_decoder(family)
    wrapper = _wrap(model)
    prompt = wrapper.prompts["default"].prompt.detach()  # (N, E)
    at = 1 if OPENS_WITH_BOS[family] else 0  # after BOS where the tokenizer adds one, else first
    rows = texts(family)
    with torch.no_grad():
        got = wrapper(**padded(rows, side, pad_id_of(model))).logits
        expected = torch.cat([spliced_alone(model, row, prompt, at).logits for row in rows])  # (B, C)
        prepended = torch.cat([spliced_alone(model, row, prompt, 0).logits for row in rows])
    assert torch.allclose(got, expected, atol=ATOL), (got - expected).abs().max()
    if at:  # the placement is real: before BOS would be another result
        assert not torch.allclose(got, prepended, atol=1e-3)


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("family", DECODERS)
def test_token_logits_and_hidden_states_line_up_with_the_callers_columns(family, side):
    rows = texts(family)
    batch = padded(rows, side)
    real = batch["attention_mask"].bool()  # (B, T)
    at = 1 if OPENS_WITH_BOS[family] else 0
    for auto, key in (
        (transformers.AutoModelForTokenClassification, "logits"),
        (transformers.AutoModel, "last_hidden_state"),
    ):
        model = make_decoder(family, auto)
        wrapper = _wrap(model)
        prompt = wrapper.prompts["default"].prompt.detach()
        with torch.no_grad():
            got = wrapper(**batch)[key]  # (B, T, C) in the caller's columns
        assert got.shape[:2] == batch["input_ids"].shape
        for b, row in enumerate(rows):
            with torch.no_grad():
                ref = spliced_alone(model, row, prompt, at)[key][0]  # (len + N, C)
            ref = torch.cat([ref[:at], ref[at + N :]])  # the row's own tokens, in order
            assert torch.allclose(got[b][real[b]], ref, atol=ATOL), (family, key, b)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_token_labels_get_ignore_index_at_virtual_positions(family):
    model = make_decoder(family, transformers.AutoModelForTokenClassification)
    wrapper = _wrap(model)
    rows = texts(family)
    labels = [
        torch.randint(0, 2, (len(row),), generator=torch.Generator().manual_seed(i))
        for i, row in enumerate(rows)
    ]
    width = max(map(len, rows))
    # left-padded labels, -100 at the padding
    batch_labels = torch.stack([torch.cat([torch.full((width - len(lab),), -100), lab]) for lab in labels])
    with torch.no_grad():
        out = wrapper(**padded(rows, "left", pad_id_of(model)), labels=batch_labels)
    expected = torch.nn.functional.cross_entropy(
        out.logits[batch_labels != -100], batch_labels[batch_labels != -100]
    )
    assert torch.allclose(out.loss, expected, atol=ATOL)


@pytest.mark.parametrize("family", DECODERS)
def test_mixed_prompt_batches(family, tmp_path):
    model = make_decoder(family)
    other = _wrap(model, seed=5)
    with torch.no_grad():
        other.prompts["default"].heads["score"].weight.normal_()
    path = other.save_prompt(tmp_path / "other.safetensors")
    wrapper = _wrap(model)
    wrapper.load_prompt(path)
    rows = texts(family)
    names = ["other", "default", "other", "default"]
    labels = torch.tensor([1, 0, 0, 1])
    with torch.no_grad():
        mixed = wrapper(**padded(rows, "left", pad_id_of(model)), prompt_names=names, labels=labels)
        alone = torch.cat(
            [
                wrapper(input_ids=torch.tensor([row]), prompt_names=[name]).logits
                for row, name in zip(rows, names)
            ]
        )
    assert torch.allclose(mixed.logits, alone, atol=ATOL)
    assert torch.allclose(mixed.loss, torch.nn.functional.cross_entropy(alone, labels), atol=ATOL)


@pytest.mark.parametrize("family", DECODERS)
def test_training_lowers_the_models_own_loss(family):
    model = make_decoder(family)
    wrapper = _wrap(model).train()
    batch = padded(texts(family), "left", pad_id_of(model))
    labels = torch.tensor([1, 0, 1, 0])
    opt = torch.optim.AdamW([p for p in wrapper.parameters() if p.requires_grad], lr=0.05)
    losses = []
    for _ in range(6):
        loss = wrapper(**batch, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
    assert all(not p.requires_grad for p in model.parameters())  # the backbone stayed frozen


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("family", DECODERS)
def test_deep_prompts_do_not_depend_on_padding(family, side, tmp_path):
    model = make_decoder(family)
    wrapper = _wrap(model, deep=True)
    shallow = _wrap(model)
    rows = texts(family)
    batch = padded(rows, side, pad_id_of(model))
    with torch.no_grad():
        got = wrapper(**batch).logits
        alone = torch.cat([o.logits for o in _alone(wrapper, rows)])
        assert not torch.allclose(got, shallow(**batch).logits, atol=1e-3)  # the deep vectors are used
    assert torch.allclose(got, alone, atol=ATOL), (got - alone).abs().max()
    # a batch mixing a deep and a shallow prompt: each row's prompt starts at its own column
    wrapper.load_prompt(shallow.save_prompt(tmp_path / "shallow.safetensors"))
    names = ["default", "shallow", "shallow", "default"]
    with torch.no_grad():
        mixed = wrapper(**batch, prompt_names=names).logits
        each = torch.cat(
            [wrapper(input_ids=torch.tensor([r]), prompt_names=[m]).logits for r, m in zip(rows, names)]
        )
    assert torch.allclose(mixed, each, atol=ATOL)


@pytest.mark.parametrize("side", SIDES)
def test_truncation_keeps_the_last_token_whatever_the_padding(side):
    model = make_decoder("llama")
    wrapper = _wrap(model, overflow="truncate")
    limit = model.config.max_position_embeddings
    rows = texts("llama", lengths=(limit, 4))  # the first row overflows: limit + BOS + N > limit
    with torch.no_grad():
        got = wrapper(**padded(rows, side)).logits
        alone = torch.cat([o.logits for o in _alone(wrapper, rows)])
        cut = rows[0][: limit - N - 1] + rows[0][-1:]  # what truncation keeps: the start and the last token
        kept = wrapper(input_ids=torch.tensor([cut])).logits
    assert torch.allclose(got, alone, atol=ATOL)
    assert torch.allclose(got[0], kept[0], atol=ATOL)


def test_truncated_token_outputs_come_back_right_padded():
    model = make_decoder("llama", transformers.AutoModelForTokenClassification)
    wrapper = _wrap(model, overflow="truncate")
    limit = model.config.max_position_embeddings
    rows = texts("llama", lengths=(limit, 4))
    with torch.no_grad():
        got = wrapper(**padded(rows, "left")).logits  # (B, limit - N, C): the cut rows, real tokens first
        alone = [o.logits[0] for o in _alone(wrapper, rows)]
    assert got.shape[1] == limit - N
    assert torch.allclose(got[0], alone[0], atol=ATOL)
    assert torch.allclose(got[1, : len(rows[1])], alone[1], atol=ATOL)


def test_predict_with_a_left_padding_tokenizer():
    tok = make_tokenizer()  # adds [CLS] = the tiny Llama's BOS id, as Llama's tokenizer adds <s>
    tok.padding_side = "left"
    model = make_decoder("llama")
    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=N, init="random"), tokenizer=tok)
    sentences = ["great film , superb acting", "dull", "the worst movie i ever watch really"]
    together = wrapper.predict(sentences)
    alone = [wrapper.predict([s])[0] for s in sentences]
    assert [p.label for p in together] == [p.label for p in alone]
    assert [p.confidence for p in together] == pytest.approx([p.confidence for p in alone], abs=ATOL)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_inputs_embeds_need_prepend_placement(family):
    model = make_decoder(family)
    rows = texts(family)
    batch = padded(rows, "left", pad_id_of(model))
    embeds = model.get_input_embeddings()(batch["input_ids"])
    with pytest.raises(ValueError, match="cannot tell whether each row starts with a BOS"):
        _wrap(model)(inputs_embeds=embeds, attention_mask=batch["attention_mask"])
    prepend = _wrap(model, placement="prepend")
    with torch.no_grad():
        from_embeds = prepend(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).logits
        from_ids = prepend(**batch).logits
    assert torch.allclose(from_embeds, from_ids, atol=ATOL)


def test_padding_on_both_sides_or_a_non_binary_mask_is_refused():
    wrapper = _wrap(make_decoder("llama"))
    ids = torch.tensor([[0, 2, 9, 0]])
    with pytest.raises(ValueError, match=r"padded on one side only .* row 0 is \[0, 1, 1, 0\]"):
        wrapper(input_ids=ids, attention_mask=torch.tensor([[0, 1, 1, 0]]))
    with pytest.raises(ValueError, match="0/1 attention_mask"):
        wrapper(input_ids=ids, attention_mask=torch.tensor([[0.5, 1, 1, 1]]))


@pytest.mark.parametrize("family", DECODERS)
def test_classifier_without_pad_token_id_is_refused_at_construction(family):
    model = make_decoder(family, pad_token_id=None)
    with pytest.raises(ValueError, match=f"{type(model).__name__}'s config has no pad_token_id"):
        _wrap(model)
    _wrap(make_decoder(family, transformers.AutoModel, pad_token_id=None))  # a bare model pools nothing


def test_model_config_is_left_alone():
    model = make_decoder("llama")
    before = copy.deepcopy(model.config.to_dict())
    wrapper = _wrap(model)
    with torch.no_grad():
        wrapper(**padded(texts("llama"), "left"), labels=torch.tensor([1, 0, 1, 0]))
    assert model.config.to_dict() == before
