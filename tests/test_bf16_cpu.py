"""A bf16 CPU backbone's attention trained in fp32: the gradients of the fp32 kernel, and only where it applies."""

import pytest
import torch
import torch.nn.functional as F

from softprompt import SoftPromptConfig, SoftPromptWrapper
from softprompt.models import bf16_cpu
from softprompt.models.bf16_cpu import MAX_KEYS, bf16_cpu_kernels
from softprompt.utils import cpu
from softprompt.wrapper import model as wrapper_model
from tests.conftest import batch, make_model


def _qkv(keys: int = 24, dtype: torch.dtype = torch.bfloat16, grad: bool = True) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    shapes = [(2, 3, keys, 8)] * 3  # (batch, heads, tokens, head size)
    return [torch.randn(s, generator=generator).to(dtype).requires_grad_(grad) for s in shapes]


def _mask(keys: int = 24, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    mask = torch.zeros(2, 1, 1, keys, dtype=dtype)  # (batch, 1, 1, keys): the last 5 keys of row 0 padded
    mask[0, ..., -5:] = torch.finfo(dtype).min
    return mask


def _grads(qkv, upstream, **kwargs):
    out = F.scaled_dot_product_attention(*qkv, **kwargs)
    (out.float() * upstream).sum().backward()
    return out, [t.grad.float() for t in qkv]


@pytest.mark.parametrize("mask_by_position", [False, True])
def test_training_attention_gives_the_fp32_kernels_output_and_gradients_in_bf16(mask_by_position):
    upstream = torch.randn(2, 3, 24, 8, generator=torch.Generator().manual_seed(1))
    reference = [t.detach().float().requires_grad_(True) for t in _qkv()]  # the same bf16 values, in fp32
    # the gradient reaching a bf16 output is rounded to bf16 on its way back
    ref_out, ref_grads = _grads(
        reference, upstream.to(torch.bfloat16).float(), attn_mask=_mask(dtype=torch.float32)
    )
    qkv = _qkv()
    with bf16_cpu_kernels():
        if mask_by_position:
            out = F.scaled_dot_product_attention(*qkv, _mask())
            (out.float() * upstream).sum().backward()
            grads = [t.grad.float() for t in qkv]
        else:
            out, grads = _grads(qkv, upstream, attn_mask=_mask())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(
        out, ref_out.to(torch.bfloat16), atol=0, rtol=0
    )  # fp32 arithmetic, one rounding
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want.to(torch.bfloat16).float(), atol=0, rtol=0)


def test_the_bf16_kernel_is_close_to_it_so_the_switch_changes_rounding_only():
    upstream = torch.randn(2, 3, 24, 8, generator=torch.Generator().manual_seed(1))
    with bf16_cpu_kernels():
        out, grads = _grads(_qkv(), upstream, attn_mask=_mask())
    plain_out, plain_grads = _grads(_qkv(), upstream, attn_mask=_mask())
    torch.testing.assert_close(out, plain_out, atol=3e-2, rtol=3e-2)
    for got, want in zip(grads, plain_grads, strict=True):
        torch.testing.assert_close(got, want, atol=5e-2, rtol=5e-2)


@pytest.mark.parametrize(
    "case", ["no gradient wanted", "under no_grad", "more keys than the limit", "fp32 inputs", "mode closed"]
)
def test_everything_else_runs_the_kernel_it_ran_before(case):
    keys = MAX_KEYS + 1 if case == "more keys than the limit" else 24
    dtype = torch.float32 if case == "fp32 inputs" else torch.bfloat16
    qkv = _qkv(keys, dtype, grad=case != "no gradient wanted")
    mask = _mask(keys, dtype)
    calls = []
    real = bf16_cpu._attention_in_fp32

    def spy(func, args, kwargs):
        out = real(func, args, kwargs)
        calls.append(out is not None)
        return out

    bf16_cpu._attention_in_fp32 = spy
    try:
        with bf16_cpu_kernels(enabled=case != "mode closed"), torch.set_grad_enabled(case != "under no_grad"):
            got = F.scaled_dot_product_attention(*qkv, attn_mask=mask)
    finally:
        bf16_cpu._attention_in_fp32 = real
    assert not any(calls)  # seen (when open) but left to the kernel it had
    torch.testing.assert_close(got, F.scaled_dot_product_attention(*qkv, attn_mask=mask), atol=0, rtol=0)


@pytest.mark.parametrize(
    ("vendor", "capability", "switch", "expected"),
    [
        ("GenuineIntel", "AVX512", None, True),  # measured faster (a Xeon with AMX)
        ("AuthenticAMD", "AVX512", None, True),  # measured faster (an EPYC with AVX-512 BF16)
        ("AuthenticAMD", "AVX2", None, False),  # no native bf16
        ("GenuineIntel", "AVX2", None, False),  # no native bf16: bf16 itself is the slow path
        ("AuthenticAMD", "AVX2", "1", True),
        ("AuthenticAMD", "AVX512", "0", False),
        ("GenuineIntel", "AVX512", "0", False),
    ],
)
def test_on_by_default_only_where_measured_faster(monkeypatch, vendor, capability, switch, expected):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.setattr(cpu, "cpu_vendor", lambda: vendor)
    if switch is None:
        monkeypatch.delenv(bf16_cpu.ENV_SWITCH, raising=False)
    else:
        monkeypatch.setenv(bf16_cpu.ENV_SWITCH, switch)
    assert bf16_cpu.fp32_attention_default() is expected


def _prompt_gradient(
    tokenizer, monkeypatch, switch: str, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    monkeypatch.setenv(bf16_cpu.ENV_SWITCH, switch)
    torch.manual_seed(0)
    wrapper = SoftPromptWrapper(
        make_model("bert"), SoftPromptConfig(num_virtual_tokens=4), tokenizer=tokenizer
    )
    wrapper.cast_backbone(dtype).train()
    out = wrapper(
        **batch(tokenizer, ["a fine film", "dull and long, far too long"]), labels=torch.tensor([1, 0])
    )
    out.loss.backward()
    return out.logits.detach(), wrapper.prompts["default"].prompt.grad.clone()


def test_a_bf16_wrapper_trains_through_it_within_bf16_rounding_of_the_fp32_model(tokenizer, monkeypatch):
    """Against the bare arithmetic (the fp32 backbone) and bf16's own kernel: rounding apart, the same step."""
    opened, upcast = [], []
    real_open, real_upcast = wrapper_model.bf16_cpu_kernels, bf16_cpu._attention_in_fp32

    def spy_open(enabled=True):
        opened.append(enabled)
        return real_open(enabled)

    def spy_upcast(func, args, kwargs):
        out = real_upcast(func, args, kwargs)
        upcast.append(out is not None)
        return out

    monkeypatch.setattr(wrapper_model, "bf16_cpu_kernels", spy_open)
    monkeypatch.setattr(bf16_cpu, "_attention_in_fp32", spy_upcast)
    logits32, grad32 = _prompt_gradient(tokenizer, monkeypatch, "1", torch.float32)
    assert opened == [False] and not upcast  # an fp32 backbone: nothing to do
    logits_on, grad_on = _prompt_gradient(tokenizer, monkeypatch, "1", torch.bfloat16)
    assert opened == [False, True] and upcast and all(upcast)  # every layer's attention ran in fp32
    logits_off, grad_off = _prompt_gradient(tokenizer, monkeypatch, "0", torch.bfloat16)
    assert opened == [False, True, False]
    monkeypatch.setenv(bf16_cpu.ENV_SWITCH, "1")
    wrapper = SoftPromptWrapper(
        make_model("bert"), SoftPromptConfig(num_virtual_tokens=4), tokenizer=tokenizer
    )
    seen = len(upcast)
    wrapper.cast_backbone(torch.bfloat16).predict(["a fine film"])
    assert opened[3:] == [False] * (len(opened) - 3) and len(opened) > 3  # prediction: no mode, ...
    assert len(upcast) == seen  # ... and no attention upcast
    assert not torch.equal(grad_on, grad_off)  # it did change the arithmetic ...
    for logits, grad in ((logits_on, grad_on), (logits_off, grad_off)):  # ... by bf16 rounding only
        torch.testing.assert_close(logits, logits32, atol=5e-2, rtol=5e-2)
        torch.testing.assert_close(grad, grad32, atol=1e-6, rtol=1e-1)
