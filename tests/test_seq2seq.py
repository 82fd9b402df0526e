"""Encoder-decoder language models (T5, BART): the prompt in the encoder's input, the decoder untouched.

Every check is against the bare model run on the encoder input with the prompt vectors spliced in by
hand (first for T5, after ``<s>`` for BART), or against each text generated alone: the same loss and
logits to 1e-5, the same generated ids token for token (greedy and beam search).
"""

import pytest
import torch
import transformers

from softprompt import SoftPromptConfig, SoftPromptWrapper
from softprompt.models.support import check_supported
from tests.conftest import PAD_ID
from tests.decoder_models import (
    SEQ2SEQ_AT,
    SEQ2SEQ_PLACEMENT,
    encoder_spliced,
    padded,
    seq2seq_config,
    seq2seq_targets,
    seq2seq_texts,
)

N = 3
ATOL = 1e-5
FAMILIES = ["t5", "bart"]
AT, PLACEMENT = SEQ2SEQ_AT, SEQ2SEQ_PLACEMENT
# larger initial weights than the defaults: a tiny random model then generates varied ids, not one id
# repeated, so comparing generations tells prompts and paddings apart
INIT = {"t5": ("initializer_factor", 10.0), "bart": ("init_std", 0.2)}


def _model(family: str, seed: int = 0):
    config = seq2seq_config(family)
    setattr(config, *INIT[family])
    torch.manual_seed(seed)
    return transformers.AutoModelForSeq2SeqLM.from_config(config).eval()


def _wrap(model, family: str, **config):
    config = {"num_virtual_tokens": N, "init": "random", "placement": PLACEMENT[family], **config}
    return SoftPromptWrapper(model, SoftPromptConfig(**config)).eval()


def _rows(family: str, lengths=(4, 1, 6)) -> list[list[int]]:
    return seq2seq_texts(family, lengths)


def _right_padded(rows: list[list[int]]) -> dict[str, torch.Tensor]:
    return padded(rows, "right", PAD_ID)


_spliced, _targets = encoder_spliced, seq2seq_targets


@pytest.mark.parametrize("family", FAMILIES)
def test_loss_and_outputs_equal_the_bare_model_with_the_prompt_in_the_encoder(family):
    model = _model(family)
    wrapper = _wrap(model, family)
    assert check_supported(model).generation == "seq2seq"
    batch = _right_padded(_rows(family))
    labels = _targets(3)
    prompt = wrapper.prompts["default"].prompt.detach()
    with torch.no_grad():
        got = wrapper(**batch, labels=labels)
        ref = model(**_spliced(model, batch, prompt, AT[family]), labels=labels)
    assert torch.allclose(got.loss, ref.loss, atol=ATOL)
    assert got.logits.shape == ref.logits.shape == (3, labels.shape[1], model.config.vocab_size)
    assert torch.allclose(got.logits, ref.logits, atol=ATOL)
    enc = ref.encoder_last_hidden_state  # (B, T + N, H); the wrapper's without the virtual positions
    at = AT[family]
    assert torch.allclose(
        got.encoder_last_hidden_state, torch.cat([enc[:, :at], enc[:, at + N :]], 1), atol=ATOL
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_labels_as_long_as_the_input_stay_the_decoders(family):
    """Target ids that happen to have the input's length are never taken for per-token labels."""
    model = _model(family)
    wrapper = _wrap(model, family)
    batch = _right_padded(_rows(family, lengths=(3, 3)))
    labels = torch.randint(8, 100, batch["input_ids"].shape)
    prompt = wrapper.prompts["default"].prompt.detach()
    with torch.no_grad():
        got = wrapper(**batch, labels=labels)
        ref = model(**_spliced(model, batch, prompt, AT[family]), labels=labels)
    assert torch.allclose(got.loss, ref.loss, atol=ATOL)


@pytest.mark.parametrize("family", FAMILIES)
def test_training_moves_only_the_prompt(family):
    model = _model(family)
    wrapper = _wrap(model, family).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = wrapper(**_right_padded(_rows(family)), labels=_targets(3))
    out.loss.backward()
    trainable = [name for name, p in wrapper.named_parameters() if p.requires_grad]
    assert trainable == ["prompts.default.prompt"]  # the LM head is the frozen model's own, never copied
    assert wrapper.prompts["default"].prompt.grad.abs().sum() > 0
    torch.optim.SGD([wrapper.prompts["default"].prompt], lr=1.0).step()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("search", [{}, {"num_beams": 3}])
@pytest.mark.parametrize("family", FAMILIES)
def test_generate_equals_the_bare_models_generate_on_prompted_embeddings(family, search):
    model = _model(family)
    wrapper = _wrap(model, family)
    batch = _right_padded(_rows(family))
    prompt = wrapper.prompts["default"].prompt.detach()
    kwargs = {"max_new_tokens": 6, "min_new_tokens": 6, "do_sample": False, **search}
    got = wrapper.generate(**batch, **kwargs)
    ref = model.generate(**_spliced(model, batch, prompt, AT[family]), **kwargs)
    assert torch.equal(got, ref)
    for i, row in enumerate(_rows(family)):  # batch vs alone: padding changes nothing
        alone = wrapper.generate(input_ids=torch.tensor([row]), **kwargs)
        assert torch.equal(alone[0], got[i, : alone.shape[1]]), i
        assert bool((got[i, alone.shape[1] :] == model.config.pad_token_id).all())


def test_the_reference_path_is_the_models_own():
    """Zero-effect check of the reference: the bare model generates the same from ids and from their embeddings."""
    model = _model("t5")
    batch = _right_padded(_rows("t5"))
    embeds = model.get_input_embeddings()(batch["input_ids"])
    from_ids = model.generate(**batch, max_new_tokens=6, num_beams=2)
    from_embeds = model.generate(
        inputs_embeds=embeds, attention_mask=batch["attention_mask"], max_new_tokens=6, num_beams=2
    )
    assert torch.equal(from_ids, from_embeds)


@pytest.mark.parametrize("family", FAMILIES)
def test_prompt_names_pick_a_prompt_per_row(family, tmp_path):
    model = _model(family)
    wrapper = _wrap(model, family)
    other = _wrap(_model(family), family, seed=7)
    path = other.save_prompt(tmp_path / "other.safetensors")
    wrapper.load_prompt(path, name="other")
    batch = _right_padded(_rows(family))
    kwargs = {"max_new_tokens": 5, "min_new_tokens": 5}
    by_name = wrapper.generate(**batch, prompt="other", **kwargs)
    assert torch.equal(by_name, other.generate(**batch, **kwargs))
    assert wrapper.active_prompt == "default"
    mixed = wrapper.generate(**batch, prompt_names=["other", "default", "other"], **kwargs)
    default = wrapper.generate(**batch, **kwargs)
    assert not torch.equal(by_name, default)  # the prompts differ, and so do their generations
    for i, source in enumerate([by_name, default, by_name]):
        assert torch.equal(mixed[i], source[i])
    with torch.no_grad():  # mixed prompts in a training batch: each row its own prompt's loss
        labels = _targets(3)
        got = wrapper(**batch, labels=labels, prompt_names=["other", "default", "other"])
        rows = [wrapper(**{k: v[i : i + 1] for k, v in batch.items()}, labels=labels[i : i + 1],
                        prompt_names=[name]) for i, name in enumerate(["other", "default", "other"])]  # fmt: skip
    ref = torch.cat([r.logits for r in rows])  # logits of ~100 (the large weights): rounding relative to them
    assert (got.logits - ref).abs().max() <= 1e-6 * ref.abs().max()


def test_generate_refusals():
    model = _model("t5")
    wrapper = _wrap(model, "t5")
    batch = _right_padded(_rows("t5"))
    with pytest.raises(ValueError, match="inputs_embeds"):
        wrapper.generate(**batch, inputs_embeds=torch.zeros(3, 4, 32))
    with pytest.raises(ValueError, match="not both"):
        wrapper.generate(**batch, prompt="default", prompt_names=["default"] * 3)
    with pytest.raises(ValueError, match="labels as"):
        wrapper(**batch, labels=torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"deep prompts on T5ForConditionalGeneration"):
        _wrap(_model("t5"), "t5", deep=True)
    with pytest.raises(ValueError, match="placement='prepend'"):  # T5 opens with no <s>
        SoftPromptWrapper(_model("t5"), SoftPromptConfig(num_virtual_tokens=N))


@pytest.mark.parametrize("family", FAMILIES)
def test_a_saved_prompt_generates_the_same_after_reloading(family, tmp_path):
    wrapper = _wrap(_model(family), family)
    path = wrapper.save_prompt(tmp_path / "p.safetensors")
    again = SoftPromptWrapper.from_prompt(_model(family), path)
    assert again.task is None and not again.prompts["default"].head_names
    batch = _right_padded(_rows(family))
    assert torch.equal(
        wrapper.generate(**batch, max_new_tokens=5), again.eval().generate(**batch, max_new_tokens=5)
    )
