"""The support matrix: every auto class on every family either matches the bare model or is refused when wrapped.

"Matches" means: the wrapper's outputs equal the bare model's with the prompt vectors spliced in by
hand (encoders: the same padded batch, after [CLS]; decoders: each text alone, after BOS where the
family has one; encoder-decoder LMs: the same padded batch, the prompt in the encoder's input, first
for T5 and after <s> for BART, with the same target labels), to 1e-5, for every per-position or pooled
output and the loss. "Refused" means a ValueError at
``SoftPromptWrapper(model, ...)`` naming the model class and what is not supported.
"""

import logging
import re
from pathlib import Path

import pytest
import torch
import transformers

from softprompt import SoftPromptConfig, SoftPromptWrapper
from softprompt.models.support import (
    DECODER_FAMILIES,
    ENCODER_FAMILIES,
    SEQ2SEQ_FAMILIES,
    check_supported,
    is_causal,
)
from tests.conftest import CLS_ID, SEP_ID, make_tokenizer, model_config
from tests.decoder_models import (
    OPENS_WITH_BOS,
    SEQ2SEQ_AT,
    SEQ2SEQ_PLACEMENT,
    decoder_config,
    encoder_spliced,
    padded,
    seq2seq_config,
    seq2seq_targets,
    seq2seq_texts,
    spliced_alone,
    texts,
)

N = 3
ATOL = 1e-5
DOCS = Path(__file__).resolve().parents[1] / "docs" / "models.md"

AUTOS = [
    "AutoModel",
    "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification",
    "AutoModelForQuestionAnswering",
    "AutoModelForMaskedLM",
    "AutoModelForMultipleChoice",
    "AutoModelForCausalLM",
    "AutoModelForSeq2SeqLM",
]
W, R, A = "works", "refused", "absent"  # absent: transformers has no such class for the family
ENCODER_ROW = [W, W, W, W, W, R, R, A]
DECODER_ROW = [W, W, W, R, A, A, W, A]
EXPECTED = {
    "bert": ENCODER_ROW,
    "roberta": ENCODER_ROW,
    "deberta-v2": [W, W, W, W, W, R, A, A],
    "gpt2": DECODER_ROW,
    "llama": DECODER_ROW,
    "qwen2": DECODER_ROW,
    "mistral": DECODER_ROW,
    "t5": [R, R, R, R, A, A, A, W],
    "bart": [R, R, A, R, W, A, R, W],  # bart's AutoModelForMaskedLM is BartForConditionalGeneration
}
CONFIGS = {
    **{family: lambda f=family: model_config(f) for family in ("bert", "roberta", "deberta-v2")},
    **{family: lambda f=family: decoder_config(f) for family in ("gpt2", "llama", "qwen2", "mistral")},
    **{family: lambda f=family: seq2seq_config(f) for family in ("t5", "bart")},
}
CASES = [(family, auto, verdict) for family, row in EXPECTED.items() for auto, verdict in zip(AUTOS, row)]


def _build(family: str, auto: str):
    torch.manual_seed(0)
    try:
        return getattr(transformers, auto).from_config(CONFIGS[family]()).eval()
    except ValueError as error:
        if "Unrecognized configuration class" in str(error):
            return None
        raise


def _compare(got, ref, at: int, per_position_len: int) -> None:
    """Every output the model gives: pooled ones as they are, per-position ones without the virtual tokens."""
    compared = 0
    for key in ("logits", "start_logits", "end_logits", "last_hidden_state"):
        value = ref.get(key)
        if value is None:
            continue
        if value.dim() >= 2 and value.shape[1] == per_position_len + N:
            value = torch.cat([value[:, :at], value[:, at + N :]], dim=1)
        assert got[key].shape == value.shape, key
        assert torch.allclose(got[key], value, atol=ATOL), (key, (got[key] - value).abs().max())
        compared += 1
    assert compared, "no output to compare"


def _check_encoder(model, wrapper) -> None:
    rows = [[CLS_ID, *range(10, 10 + k), SEP_ID] for k in (4, 1, 6)]
    batch = padded(rows, "right")
    prompt = wrapper.prompts["default"].prompt.detach()  # (N, E)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    embeds = model.get_input_embeddings()(ids)  # (B, T, E)
    b = ids.shape[0]
    with torch.no_grad():
        got = wrapper(**batch)
        ref = model(  # [CLS] p1..pN tokens [SEP] [PAD]...
            inputs_embeds=torch.cat([embeds[:, :1], prompt.expand(b, -1, -1), embeds[:, 1:]], dim=1),
            attention_mask=torch.cat([mask[:, :1], torch.ones(b, N, dtype=mask.dtype), mask[:, 1:]], dim=1),
        )
    _compare(got, ref, 1, ids.shape[1])


def _check_decoder(family, model, wrapper) -> None:
    prompt = wrapper.prompts["default"].prompt.detach()
    at = 1 if OPENS_WITH_BOS[family] else 0
    rows = texts(family)
    for side in ("left", "right"):
        batch = padded(rows, side, model.config.pad_token_id)
        with torch.no_grad():
            got = wrapper(**batch)
        for i, row in enumerate(rows):
            real = batch["attention_mask"][i].bool()  # the row's own columns
            mine = {
                k: (v[i : i + 1] if v.dim() == 2 else v[i : i + 1, real])
                for k, v in got.items()
                if k != "loss"
            }
            with torch.no_grad():
                ref = spliced_alone(model, row, prompt, at)
            _compare(mine, ref, at, len(row))


def _check_seq2seq(family, model, wrapper) -> None:
    """Loss, decoder logits and encoder states against the bare model, the prompt spliced into the encoder by hand."""
    batch = padded(seq2seq_texts(family), "right")
    labels = seq2seq_targets(batch["input_ids"].shape[0])
    prompt = wrapper.prompts["default"].prompt.detach()
    at = SEQ2SEQ_AT[family]
    with torch.no_grad():
        got = wrapper(**batch, labels=labels)
        ref = model(**encoder_spliced(model, batch, prompt, at), labels=labels)
    assert torch.allclose(got.loss, ref.loss, atol=ATOL)
    _compare(got, ref, at, batch["input_ids"].shape[1])  # the decoder's logits, one per target
    enc = ref.encoder_last_hidden_state
    assert torch.allclose(
        got.encoder_last_hidden_state, torch.cat([enc[:, :at], enc[:, at + N :]], 1), atol=ATOL
    )


@pytest.mark.parametrize(("family", "auto", "verdict"), CASES)
def test_every_auto_class_matches_the_bare_model_or_is_refused(family, auto, verdict):
    model = _build(family, auto)
    if verdict == A:
        assert model is None, f"transformers has {type(model).__name__}: decide its verdict"
        return
    assert model is not None, f"transformers has no {auto} for {family}"
    name = type(model).__name__
    if verdict == R:
        with pytest.raises(ValueError, match=re.escape(name)) as error:
            SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=N))
        assert "not supported" in str(error.value)
        return
    if family in SEQ2SEQ_FAMILIES:
        config = SoftPromptConfig(num_virtual_tokens=N, init="random", placement=SEQ2SEQ_PLACEMENT[family])
        _check_seq2seq(family, model, SoftPromptWrapper(model, config).eval())
        return
    tok = None if family in DECODER_FAMILIES else make_tokenizer()  # BERT's config names no [CLS] id
    wrapper = SoftPromptWrapper(
        model, SoftPromptConfig(num_virtual_tokens=N, init="random"), tokenizer=tok
    ).eval()
    assert wrapper._support.decoder_only == (family in DECODER_FAMILIES)
    if family in DECODER_FAMILIES:
        _check_decoder(family, model, wrapper)
    else:
        _check_encoder(model, wrapper)


def test_the_probe_tells_causal_from_bidirectional():
    assert is_causal(transformers.AutoModel.from_config(decoder_config("llama")))
    assert is_causal(transformers.AutoModel.from_config(decoder_config("gpt2")))
    assert not is_causal(transformers.AutoModel.from_config(model_config("bert")))
    assert not is_causal(transformers.AutoModel.from_config(model_config("deberta-v2")))


@pytest.mark.skipif(not hasattr(transformers, "CamembertConfig"), reason="no CamemBERT in this transformers")
def test_an_unlisted_encoder_family_runs_once_probed_bidirectional(caplog):
    settings = {k: v for k, v in model_config("roberta").to_dict().items() if k != "model_type"}
    config = transformers.CamembertConfig(**settings)
    model = transformers.AutoModelForSequenceClassification.from_config(config).eval()
    with caplog.at_level(logging.INFO, logger="softprompt.models.support"):
        support = check_supported(model)
    assert (support.verified, support.decoder_only) == (False, False)
    assert "not a verified family" in caplog.text
    wrapper = SoftPromptWrapper(
        model, SoftPromptConfig(num_virtual_tokens=N, init="random"), tokenizer=make_tokenizer()
    )
    _check_encoder(model, wrapper.eval())


@pytest.mark.skipif(not hasattr(transformers, "Qwen3Config"), reason="no Qwen3 in this transformers")
def test_an_unlisted_decoder_family_is_refused():
    settings = {k: v for k, v in decoder_config("qwen2").to_dict().items() if k != "model_type"}
    config = transformers.Qwen3Config(**settings, head_dim=16)
    model = transformers.AutoModelForSequenceClassification.from_config(config).eval()
    with pytest.raises(
        ValueError, match=r"Qwen3ForSequenceClassification \('qwen3'\) is a decoder-only model of a family"
    ):
        SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=N))


def test_a_backbone_that_cannot_take_embeddings_is_refused():
    class NoEmbeds(transformers.BertModel):
        def forward(self, input_ids=None, attention_mask=None):  # no inputs_embeds
            return super().forward(input_ids=input_ids, attention_mask=attention_mask)

    model = NoEmbeds(model_config("bert")).eval()
    with pytest.raises(ValueError, match="NoEmbeds.forward takes no inputs_embeds"):
        SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=N))


def test_docs_name_every_verified_family():
    text = DOCS.read_text()
    for family in sorted(ENCODER_FAMILIES | DECODER_FAMILIES | SEQ2SEQ_FAMILIES):
        assert f"`{family}`" in text, family
