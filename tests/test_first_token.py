"""The last layer computed for position 0 only: the same logits, loss and prompt gradients as the bare model."""

import contextlib
from collections.abc import Iterator

import pytest
import torch
import transformers

from softprompt import SoftPromptConfig, SoftPromptWrapper, predict_logits
from softprompt.models.first_token import FAMILIES, FirstTokenLayer, first_token_model
from tests.conftest import after_cls_reference, batch, make_model, model_config

TRIMMED = ["bert", "roberta", "xlm-roberta", "electra"]


def _model(arch: str, attention: str, task: str = "seq") -> transformers.PreTrainedModel:
    config = model_config(arch)
    config._attn_implementation = attention
    torch.manual_seed(0)
    return transformers.AutoModelForSequenceClassification.from_config(config).eval()


def _padded(tokenizer) -> dict[str, torch.Tensor]:
    # rows of different lengths, so the attention mask has padding to respect
    return batch(tokenizer, ["great film , superb acting and a really good story", "dull", "not the worst"])


@contextlib.contextmanager
def _whole(wrapper: SoftPromptWrapper) -> Iterator[None]:
    """While open, the wrapper runs the whole model (no trimmed last layer)."""
    wrapper.trim_last_layer = False
    try:
        yield
    finally:
        wrapper.trim_last_layer = True


def _last_layer_positions(model: torch.nn.Module) -> list[int]:
    """Hooks the last layer's feed-forward input and records how many positions it saw, per call."""
    seen: list[int] = []
    layer = model.base_model.encoder.layer[-1]
    layer.intermediate.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[1]))
    return seen


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("arch", TRIMMED)
def test_trimmed_model_equals_the_bare_model(arch, attention, tokenizer):
    model = _model(arch, attention)
    trimmed = first_token_model(model)
    assert trimmed is not None and isinstance(trimmed.base_model.encoder.layer[-1], FirstTokenLayer)
    inputs = _padded(tokenizer)
    if arch != "bert":
        inputs.pop("token_type_ids")
    labels = torch.tensor([0, 1, 0])
    embeds = model.get_input_embeddings()(inputs.pop("input_ids")).detach()
    full_embeds = embeds.clone().requires_grad_(True)
    trim_embeds = embeds.clone().requires_grad_(True)
    full = model(inputs_embeds=full_embeds, labels=labels, **inputs)
    cut = trimmed(inputs_embeds=trim_embeds, labels=labels, **inputs)
    torch.testing.assert_close(cut.logits, full.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(cut.loss, full.loss, atol=1e-5, rtol=0)
    full.loss.backward()
    cut.loss.backward()
    # the gradient a prompt at the input would get: every position of every layer but the last's
    torch.testing.assert_close(trim_embeds.grad, full_embeds.grad, atol=1e-6, rtol=1e-4)
    # the model itself is untouched: its own last layer is still whole
    assert not isinstance(model.base_model.encoder.layer[-1], FirstTokenLayer)
    assert trimmed.base_model.encoder.layer[-1].layer is model.base_model.encoder.layer[-1]


def test_camembert_is_trimmed_and_exact(tokenizer):
    fields = {k: v for k, v in model_config("roberta").to_dict().items() if k != "model_type"}
    config = transformers.CamembertConfig(**fields)
    torch.manual_seed(0)
    model = transformers.CamembertForSequenceClassification(config).eval()
    trimmed = first_token_model(model)
    assert trimmed is not None
    inputs = _padded(tokenizer)
    inputs.pop("token_type_ids")
    torch.testing.assert_close(trimmed(**inputs).logits, model(**inputs).logits, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("arch", "task"),
    [
        ("bert", "token"),
        ("bert", "base"),
        ("distilbert", "seq"),
        ("deberta-v2", "seq"),
        ("albert", "seq"),
        ("mpnet", "seq"),
    ],
)
def test_models_not_known_exact_are_not_trimmed(arch, task):
    assert first_token_model(make_model(arch, task)) is None


def test_other_attention_implementations_are_not_trimmed():
    model = _model("bert", "sdpa")
    model.config._attn_implementation = "flex_attention"
    assert first_token_model(model) is None


def test_the_wrapper_trims_prediction_and_training_and_equals_the_bare_model(tokenizer):
    model = make_model("bert")
    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=4, seed=1), tokenizer=tokenizer)
    seen = _last_layer_positions(model)
    inputs = _padded(tokenizer)
    labels = torch.tensor([1, 0, 1])
    prompt = wrapper.prompts["default"].prompt.detach()
    reference = after_cls_reference(model, prompt, inputs, labels=labels)
    seen.clear()
    wrapper.eval()
    out = wrapper(**inputs, labels=labels)
    assert seen == [1]  # the last layer's feed-forward ran for position 0 alone
    torch.testing.assert_close(out.logits, reference.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.loss, reference.loss, atol=1e-5, rtol=0)
    # training mode (the frozen backbone stays in eval): trimmed too, and the prompt's gradient is the bare model's
    wrapper.train()
    seen.clear()
    out = wrapper(**inputs, labels=labels)
    out.loss.backward()
    assert seen == [1]
    bare_prompt = prompt.clone().requires_grad_(True)
    after_cls_reference(model, bare_prompt, inputs, labels=labels).loss.backward()
    torch.testing.assert_close(wrapper.prompts["default"].prompt.grad, bare_prompt.grad, atol=1e-6, rtol=1e-4)


def test_predictions_equal_the_untrimmed_wrapper(tokenizer):
    wrapper = SoftPromptWrapper(
        make_model("roberta"), SoftPromptConfig(num_virtual_tokens=3), tokenizer=tokenizer
    )
    texts = ["great film", "the worst movie i ever watch really", "dull , not good", "superb"]
    cut = predict_logits(wrapper, tokenizer, texts, batch_size=3)
    with _whole(wrapper):
        whole = predict_logits(wrapper, tokenizer, texts, batch_size=3)
    torch.testing.assert_close(cut, whole, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "case", ["output_hidden_states", "output_attentions", "deep", "backbone_dropout", "two_prompts_mixed"]
)
def test_the_whole_model_runs_where_the_trim_would_change_something(case, tokenizer, tmp_path):
    deep = case == "deep"
    config = SoftPromptConfig(num_virtual_tokens=3, deep=deep, backbone_dropout=case == "backbone_dropout")
    model = make_model("bert")
    wrapper = SoftPromptWrapper(model, config, tokenizer=tokenizer)
    seen = _last_layer_positions(model)
    inputs = _padded(tokenizer)
    length = inputs["input_ids"].shape[1] + 3
    kwargs = {case: True} if case.startswith("output_") else {}
    if case == "two_prompts_mixed":
        other = SoftPromptWrapper(
            make_model("bert"), SoftPromptConfig(num_virtual_tokens=3, seed=7), tokenizer=tokenizer
        )
        wrapper.load_prompt(other.save_prompt(tmp_path / "other.safetensors"), "other")
        kwargs["prompt_names"] = ["default", "other", "default"]
    wrapper.train() if case == "backbone_dropout" else wrapper.eval()
    out = wrapper(**inputs, **kwargs)
    if case == "output_hidden_states":
        assert seen == [length] and out.hidden_states[-1].shape[1] == length
    elif case == "two_prompts_mixed":
        assert seen == [1, 1]  # one trimmed pass per prompt, on that prompt's rows
        single = wrapper(**{k: v[1:2] for k, v in inputs.items()}, prompt_names=["other"])
        torch.testing.assert_close(out.logits[1:2], single.logits, atol=1e-5, rtol=0)
    else:
        assert seen == [length]


@pytest.mark.parametrize("how", ["int8", "bf16"])
def test_cast_and_quantized_backbones_are_trimmed_the_same_way(how, tokenizer):
    wrapper = SoftPromptWrapper(
        make_model("bert"), SoftPromptConfig(num_virtual_tokens=3), tokenizer=tokenizer
    )
    if how == "int8":
        wrapper.quantize_backbone()
    else:
        wrapper.cast_backbone(torch.bfloat16)
    inputs = _padded(tokenizer)
    wrapper.eval()
    with torch.inference_mode():
        cut = wrapper(**inputs).logits.float()
        with _whole(wrapper):
            whole = wrapper(**inputs).logits.float()
    tolerance = 1e-5 if how == "int8" else 2e-2  # bf16: two roundings of a different order of sums
    torch.testing.assert_close(cut, whole, atol=tolerance, rtol=0)


def test_the_family_table_names_real_sequence_classification_classes():
    for model_type, name in FAMILIES.items():
        assert hasattr(transformers, name), name
        assert transformers.AutoConfig.for_model(model_type).model_type == model_type
