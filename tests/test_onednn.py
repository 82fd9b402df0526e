"""Frozen fp32 linears as prepacked oneDNN GEMMs: F.linear's results and gradients, and only where they apply."""

import gc

import pytest
import torch
import torch.nn.functional as F

from softprompt import SoftPromptConfig, SoftPromptWrapper
from softprompt.models import onednn
from softprompt.models.onednn import onednn_unavailable, packed_linears
from softprompt.utils import cpu
from tests.conftest import batch, make_model

pytestmark = pytest.mark.skipif(onednn_unavailable() is not None, reason=str(onednn_unavailable()))


def _linear(out_features: int = 24, in_features: int = 40, bias: bool = True) -> torch.nn.Linear:
    return torch.nn.Linear(in_features, out_features, bias=bias).requires_grad_(False)


@pytest.mark.parametrize("shape", [(7, 40), (3, 5, 40), (40,), (2, 3, 4, 40)])
@pytest.mark.parametrize("bias", [True, False])
def test_forward_equals_f_linear(shape, bias):
    layer = _linear(bias=bias)
    x = torch.randn(*shape)
    with packed_linears():
        got = layer(x)
    assert id(layer.weight) in onednn._CACHE  # it did run packed
    assert got.shape == F.linear(x, layer.weight, layer.bias).shape
    torch.testing.assert_close(got, F.linear(x, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)


def test_input_gradient_equals_f_linear_and_the_weight_gets_none():
    layer = _linear()
    x = torch.randn(3, 6, 40)
    packed_x, plain_x = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    upstream = torch.randn(3, 6, 24)
    with packed_linears():
        (layer(packed_x) * upstream).sum().backward()
    (F.linear(plain_x, layer.weight, layer.bias) * upstream).sum().backward()
    torch.testing.assert_close(packed_x.grad, plain_x.grad, atol=1e-5, rtol=1e-5)
    assert layer.weight.grad is None


def test_a_trainable_weight_runs_as_before_and_gets_its_gradient():
    layer = torch.nn.Linear(40, 24)  # requires_grad: full fine-tuning needs dW, which packing does not give
    x = torch.randn(5, 40)
    with packed_linears():
        layer(x).sum().backward()
    assert layer.weight.grad is not None
    assert id(layer.weight) not in onednn._CACHE  # with gradients on, a trainable weight is never packed


def test_a_trainable_weight_packs_while_gradients_are_off_and_never_goes_stale():
    """Prediction of a fine-tuned model: no gradient reaches the weights, so they pack; a step repacks them."""
    layer = torch.nn.Linear(40, 24)
    x = torch.randn(5, 40)
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    for _ in range(2):  # predict, train, predict
        with torch.inference_mode(), packed_linears():
            got = layer(x)
        assert id(layer.weight) in onednn._CACHE
        torch.testing.assert_close(
            got, F.linear(x, layer.weight.detach(), layer.bias.detach()), atol=1e-5, rtol=1e-5
        )
        before = got.clone()
        layer(x).pow(2).sum().backward()  # a training step outside the mode
        opt.step()
        opt.zero_grad()
    with torch.no_grad(), packed_linears():
        after = layer(x)
    assert not torch.allclose(after, before)  # the step changed the weights, and the packed copy followed
    torch.testing.assert_close(
        after, F.linear(x, layer.weight.detach(), layer.bias.detach()), atol=1e-5, rtol=1e-5
    )


def test_a_changed_weight_is_packed_again():
    layer = _linear()
    x = torch.randn(4, 40)
    with packed_linears():
        layer(x)
        layer.weight.mul_(2.0)  # in place: a new version
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)
        layer.weight.data = torch.randn(24, 40)  # new storage
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)
        version = layer.weight._version
        layer.weight.data.copy_(torch.randn(24, 40))  # same storage, and no version bump
        assert layer.weight._version == version
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", ["bf16 weight", "autocast", "disabled"])
def test_what_it_does_not_cover_runs_unchanged(case):
    layer = _linear()
    x = torch.randn(4, 40)
    if case == "bf16 weight":
        layer = layer.to(torch.bfloat16)
        x = x.to(torch.bfloat16)
    with (
        packed_linears(enabled=case != "disabled"),
        torch.autocast("cpu", dtype=torch.bfloat16, enabled=case == "autocast"),
    ):
        got = layer(x)
        expected = F.linear(x, layer.weight, layer.bias)
    assert id(layer.weight) not in onednn._CACHE
    assert torch.equal(got, expected)


def test_the_cache_entry_goes_with_its_weight():
    layer = _linear()
    with packed_linears():
        layer(torch.randn(2, 40))
    ident = id(layer.weight)
    assert ident in onednn._CACHE
    del layer
    gc.collect()
    assert ident not in onednn._CACHE


def test_clear_cache_drops_the_copies_and_packing_resumes():
    layer = _linear()
    x = torch.randn(2, 40)
    with packed_linears():
        layer(x)
    assert onednn.clear_cache() >= 1 and id(layer.weight) not in onednn._CACHE
    with packed_linears():
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)
    assert id(layer.weight) in onednn._CACHE


def test_nested_contexts_stack_one_mode():
    layer = _linear()
    with packed_linears(), packed_linears():
        modes = torch.overrides._get_current_function_mode_stack()
        assert sum(isinstance(m, onednn.PackedLinearMode) for m in modes) == 1
        layer(torch.randn(2, 40))
    assert not torch.overrides._get_current_function_mode_stack()


def test_the_wrapper_uses_it_by_default_with_the_bare_model_s_results(tokenizer):
    model = make_model("bert")
    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=3), tokenizer=tokenizer)
    wrapper.trim_last_layer = False  # this lever alone
    inputs = batch(tokenizer)
    labels = torch.tensor([0, 1, 1])
    query = model.bert.encoder.layer[0].attention.self.query.weight
    outputs = {}
    for packed in (True, False):
        onednn._CACHE.pop(id(query), None)
        wrapper.onednn_linear = packed
        wrapper.train()
        out = wrapper(**inputs, labels=labels)
        out.loss.backward()
        assert (id(query) in onednn._CACHE) == packed
        prompt = wrapper.prompts["default"].prompt
        outputs[packed] = (out.logits.detach(), prompt.grad.clone())
        prompt.grad = None
    torch.testing.assert_close(outputs[True][0], outputs[False][0], atol=1e-5, rtol=0)
    torch.testing.assert_close(outputs[True][1], outputs[False][1], atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize(
    ("vendor", "capability", "switch", "expected"),
    [
        ("AuthenticAMD", "AVX512", None, True),  # measured faster (two machines)
        ("AuthenticAMD", "AVX2", None, False),  # measured slower (Zen 3)
        (
            "GenuineIntel",
            "AVX512",
            None,
            False,
        ),  # measured level / slower (Xeon with AMX): MKL uses AVX-512 there
        ("GenuineIntel", "AVX2", None, False),  # not measured
        ("", "AVX512", None, False),  # vendor unknown: not measured
        ("AuthenticAMD", "DEFAULT", None, False),
        ("GenuineIntel", "AVX2", "1", True),
        ("AuthenticAMD", "AVX512", "0", False),
    ],
)
def test_on_by_default_only_where_measured_faster(
    monkeypatch, tokenizer, vendor, capability, switch, expected
):
    """AMD's AVX-512 CPUs were measured faster than torch's BLAS; other kinds keep the bare arithmetic."""
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.setattr(cpu, "cpu_vendor", lambda: vendor)
    if switch is None:
        monkeypatch.delenv(onednn.ENV_SWITCH, raising=False)
    else:
        monkeypatch.setenv(onednn.ENV_SWITCH, switch)
    assert onednn.onednn_default() is expected
    wrapper = SoftPromptWrapper(
        make_model("bert"), SoftPromptConfig(num_virtual_tokens=3), tokenizer=tokenizer
    )
    assert wrapper.onednn_linear is expected
