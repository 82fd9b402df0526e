"""Causal language models (GPT-2, Llama, Qwen2, Mistral) with a soft prompt: training loss and generation.

Every check is against the bare model run on each text alone with the prompt vectors spliced in by
hand (after BOS where the family's tokenizer adds one): the same loss and logits to 1e-5, the same
generated ids token for token (greedy and beam search), whichever side the batch was padded on.
"""

import pytest
import torch
import transformers

from softprompt import SoftPromptConfig, SoftPromptWrapper
from softprompt.models.layout import IGNORE_INDEX
from softprompt.models.support import check_supported
from tests.decoder_models import DECODERS, OPENS_WITH_BOS, decoder_config, padded, texts

N = 3
ATOL = 1e-5
SIDES = ["left", "right"]
TARGET = 2  # each text's last tokens are its "continuation": the only labelled ones


def _model(family: str, seed: int = 0):
    config = decoder_config(family)
    config.initializer_range = 0.2  # larger than the default: varied generations, not one id repeated
    torch.manual_seed(seed)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


def _wrap(model, **config):
    return SoftPromptWrapper(
        model, SoftPromptConfig(**{"num_virtual_tokens": N, "init": "random", **config})
    ).eval()


def _spliced(model, row: list[int], prompt: torch.Tensor, at: int) -> torch.Tensor:
    """``(1, T + N, E)``: one text's embeddings with ``prompt`` ``(N, E)`` spliced in by hand before column ``at``."""
    embeds = model.get_input_embeddings()(torch.tensor([row]))  # (1, T, E)
    return torch.cat([embeds[:, :at], prompt.unsqueeze(0), embeds[:, at:]], dim=1)


def _labels(row: list[int], everything: bool = False) -> list[int]:
    """The row's last ``TARGET`` ids as targets, -100 before (``everything``: every id, BOS included)."""
    return list(row) if everything else [IGNORE_INDEX] * (len(row) - TARGET) + row[-TARGET:]


def _padded_labels(labels: list[list[int]], side: str) -> torch.Tensor:
    return padded(labels, side, IGNORE_INDEX)["input_ids"]


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("family", DECODERS)
def test_loss_and_logits_equal_each_text_alone_with_the_prompt_spliced_by_hand(family, side):
    model = _model(family)
    wrapper = _wrap(model)
    assert check_supported(model).generation == "causal"
    prompt = wrapper.prompts["default"].prompt.detach()
    at = 1 if OPENS_WITH_BOS[family] else 0
    rows = [row for row in texts(family) if len(row) > TARGET]
    labels = [_labels(row, everything=i == 0) for i, row in enumerate(rows)]  # row 0: its BOS label too
    batch = padded(rows, side, model.config.pad_token_id)
    with torch.no_grad():
        got = wrapper(**batch, labels=_padded_labels(labels, side))
        total, count = 0.0, 0
        for i, (row, label) in enumerate(zip(rows, labels)):
            spliced_labels = torch.tensor([label[:at] + [IGNORE_INDEX] * N + label[at:]])  # (1, T + N)
            ref = model(inputs_embeds=_spliced(model, row, prompt, at), labels=spliced_labels)
            scored = int((spliced_labels[:, 1:] != IGNORE_INDEX).sum())  # the model shifts its labels
            total, count = total + ref.loss * scored, count + scored
            real = batch["attention_mask"][i].bool()
            ref_logits = torch.cat([ref.logits[:, :at], ref.logits[:, at + N :]], dim=1)  # (1, T, V)
            assert torch.allclose(got.logits[i : i + 1, real], ref_logits, atol=ATOL), i
    assert torch.allclose(got.loss, total / count, atol=ATOL), (got.loss, total / count)


@pytest.mark.parametrize("search", [{}, {"num_beams": 3}])
@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("family", DECODERS)
def test_generate_equals_the_bare_models_generate_on_each_prompted_text_alone(family, side, search):
    model = _model(family)
    wrapper = _wrap(model)
    prompt = wrapper.prompts["default"].prompt.detach()
    at = 1 if OPENS_WITH_BOS[family] else 0
    rows = texts(family)
    batch = padded(rows, side, model.config.pad_token_id)
    kwargs = {"max_new_tokens": 5, "min_new_tokens": 5, "do_sample": False, **search}
    got = wrapper.generate(**batch, **kwargs)
    width = batch["input_ids"].shape[1]
    assert torch.equal(got[:, :width], padded(rows, "left", model.config.pad_token_id)["input_ids"])
    for i, row in enumerate(rows):
        ref = model.generate(inputs_embeds=_spliced(model, row, prompt, at), **kwargs)  # (1, 5): the new ids
        assert torch.equal(got[i, width:], ref[0]), (i, got[i, width:], ref[0])


def test_the_reference_path_is_the_models_own():
    """Zero-effect check of the reference: the bare model generates the same from ids and from their embeddings."""
    model = _model("llama")
    row = torch.tensor([texts("llama")[1]])
    kwargs = {"max_new_tokens": 5, "num_beams": 2}
    from_ids = model.generate(input_ids=row, **kwargs)
    from_embeds = model.generate(inputs_embeds=model.get_input_embeddings()(row), **kwargs)
    assert torch.equal(from_ids[:, row.shape[1] :], from_embeds)


def test_beams_return_sequences_and_dict_outputs_keep_the_inputs_in_front():
    model = _model("gpt2")
    wrapper = _wrap(model)
    rows = texts("gpt2")
    batch = padded(rows, "right", model.config.pad_token_id)
    out = wrapper.generate(
        **batch, max_new_tokens=4, num_beams=3, num_return_sequences=2, return_dict_in_generate=True,
        output_scores=True,
    )  # fmt: skip
    width = batch["input_ids"].shape[1]
    assert out.sequences.shape == (2 * len(rows), width + 4)
    left = padded(rows, "left", model.config.pad_token_id)["input_ids"]
    assert torch.equal(out.sequences[:, :width], left.repeat_interleave(2, dim=0))
    plain = wrapper.generate(**batch, max_new_tokens=4, num_beams=3, num_return_sequences=2)
    assert torch.equal(plain, out.sequences)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_prompt_and_prompt_names_pick_the_prompt(family, tmp_path):
    wrapper = _wrap(_model(family))
    other = _wrap(_model(family), seed=7)
    wrapper.load_prompt(other.save_prompt(tmp_path / "other.safetensors"), name="other")
    batch = padded(texts(family), "left", wrapper.model.config.pad_token_id)
    kwargs = {"max_new_tokens": 4, "min_new_tokens": 4}
    by_name = wrapper.generate(**batch, prompt="other", **kwargs)
    assert torch.equal(by_name, other.generate(**batch, **kwargs))
    default = wrapper.generate(**batch, **kwargs)
    assert not torch.equal(by_name, default)  # the prompts differ, and so do their generations
    names = ["other", "default", "default", "other"]
    mixed = wrapper.generate(**batch, prompt_names=names, **kwargs)
    for i, name in enumerate(names):
        assert torch.equal(mixed[i], (by_name if name == "other" else default)[i])


def test_training_moves_only_the_prompt():
    model = _model("llama")  # an untied lm_head: it must not be copied per prompt nor trained
    wrapper = _wrap(model).train()
    assert [n for n, p in wrapper.named_parameters() if p.requires_grad] == ["prompts.default.prompt"]
    rows = texts("llama")
    batch = padded(rows, "right", model.config.pad_token_id)
    labels = _padded_labels(
        [_labels(row) if len(row) > TARGET else [IGNORE_INDEX] * len(row) for row in rows], "right"
    )
    optimizer = torch.optim.Adam([wrapper.prompts["default"].prompt], lr=0.1)
    losses = []
    for _ in range(5):
        loss = wrapper(**batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


def test_refusals():
    model = _model("llama")
    wrapper = _wrap(model)
    batch = padded(texts("llama"), "left", model.config.pad_token_id)
    with pytest.raises(ValueError, match="max_new_tokens"):
        wrapper.generate(**batch, max_length=30)
    with pytest.raises(ValueError, match="position_ids"):
        wrapper.generate(**batch, position_ids=torch.zeros_like(batch["input_ids"]))
    with pytest.raises(ValueError, match="labels of the inputs' shape"):
        wrapper(**batch, labels=torch.tensor([1, 0, 1, 1]))
    with pytest.raises(ValueError, match="deep prompts on LlamaForCausalLM"):
        _wrap(_model("llama"), deep=True)
    cut = _wrap(_model("llama"), overflow="truncate")
    long = torch.randint(8, 100, (1, 64))
    with pytest.raises(ValueError, match="overflow='truncate' would cut"):
        cut(input_ids=long, labels=long)
    cut.generate(input_ids=long, max_new_tokens=2)  # generation from a cut input is fine
    classifier = transformers.AutoModelForSequenceClassification.from_config(decoder_config("llama"))
    with pytest.raises(ValueError, match="does not generate"):
        _wrap(classifier).generate(**batch, max_new_tokens=2)


def test_the_text_generation_pipeline_runs_the_wrapper():
    from tests.conftest import make_tokenizer

    tok = make_tokenizer()  # [CLS] text [SEP]: [CLS] is this Llama's BOS
    wrapper = SoftPromptWrapper(_model("llama"), SoftPromptConfig(num_virtual_tokens=N), tokenizer=tok).eval()
    pipe = transformers.pipeline("text-generation", model=wrapper, tokenizer=tok)
    got = pipe("great film", max_new_tokens=3, do_sample=False, return_tensors=True)[0]["generated_token_ids"]
    ids = torch.tensor([tok("great film")["input_ids"]])
    assert got == wrapper.generate(ids, max_new_tokens=3, do_sample=False)[0].tolist()
