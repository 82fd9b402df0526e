"""An int8 backbone for CPU inference: what is converted, how close it stays, and what it refuses."""

import datasets
import pytest
import torch
from torch import nn

from softprompt import SoftPromptConfig, SoftPromptWrapper, read_prompt_file, tokenize_dataset, train_prompt
from softprompt.models.quantize import is_quantized, quantize_linear_int8
from tests.conftest import make_model

TEXTS = ["great film", "the worst movie i ever watch , awful", "dull", "superb acting and a fine story"]


@pytest.fixture
def wrapper(tokenizer):
    torch.manual_seed(0)
    return SoftPromptWrapper(make_model("bert"), SoftPromptConfig(num_virtual_tokens=4), tokenizer=tokenizer)


def test_backbone_linears_become_int8_and_the_head_stays_fp32(wrapper):
    n_linear = sum(isinstance(m, nn.Linear) for m in wrapper.model.base_model.modules())
    assert not wrapper.backbone_quantized and not is_quantized(wrapper.model)
    assert wrapper.quantize_backbone() is wrapper
    assert wrapper.backbone_quantized and is_quantized(wrapper.model.base_model)
    kept = [m for m in wrapper.model.base_model.modules() if isinstance(m, nn.Linear)]
    assert kept and all(m.in_features > m.out_features for m in kept)  # only down-projections stay fp32
    assert n_linear > len(kept) and isinstance(wrapper.model.classifier, nn.Linear)  # the head is untouched
    assert wrapper.model.classifier.weight.dtype == torch.float32
    wrapper.quantize_backbone()  # a second call is a no-op
    assert wrapper.backbone_quantized


def test_int8_logits_stay_close_to_fp32(wrapper):
    with torch.inference_mode():
        fp32 = torch.cat([wrapper(**wrapper.tokenize([t])).logits for t in TEXTS])
    wrapper.quantize_backbone()
    with torch.inference_mode():
        int8 = torch.cat([wrapper(**wrapper.tokenize([t])).logits for t in TEXTS])
    assert not torch.equal(int8, fp32)  # it is an approximation ...
    spread = (fp32.max() - fp32.min()).item()
    assert (int8 - fp32).abs().max().item() < 0.1 * spread  # ... a close one


def test_quantized_wrapper_saves_the_same_prompt_file(wrapper, tmp_path):
    before = read_prompt_file(wrapper.save_prompt(tmp_path / "fp32.safetensors"))
    after = read_prompt_file(wrapper.quantize_backbone().save_prompt(tmp_path / "int8.safetensors"))
    assert torch.equal(before.prompt, after.prompt)
    assert all(torch.equal(before.head[k], after.head[k]) for k in before.head)


def test_quantized_backbone_refuses_training_and_casting(wrapper, tokenizer, tmp_path):
    rows = datasets.Dataset.from_list([{"text": t, "label": i % 2} for i, t in enumerate(TEXTS)])
    train = tokenize_dataset(rows, tokenizer, max_length=32, num_virtual_tokens=4)
    wrapper.quantize_backbone()
    with pytest.raises(ValueError, match="int8"):
        train_prompt(wrapper, train, output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before anything was written
    with pytest.raises(ValueError, match="int8"):
        wrapper.cast_backbone(torch.bfloat16)


def test_quantize_refuses_what_it_cannot_convert():
    with pytest.raises(ValueError, match="no nn.Linear"):
        quantize_linear_int8(nn.Sequential(nn.LayerNorm(4)))
    with pytest.raises(ValueError, match="no nn.Linear"):
        quantize_linear_int8(nn.Sequential(nn.Linear(8, 4)))  # a down-projection stays fp32
    with pytest.raises(ValueError, match="fp32"):
        quantize_linear_int8(nn.Sequential(nn.Linear(4, 4)).to(torch.bfloat16))
