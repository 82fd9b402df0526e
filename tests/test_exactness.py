"""A prompt saved and reloaded in a fresh process gives bitwise-identical logits."""

import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from softprompt import SoftPromptConfig, SoftPromptWrapper
from tests.conftest import batch, make_model

REPO = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent(
    """
    import sys, torch
    from softprompt import SoftPromptWrapper
    from tests.conftest import batch, make_model, make_tokenizer
    tok = make_tokenizer()
    model = make_model("{arch}", seed=123)  # backbone: same seed; head: deliberately different
    torch.nn.init.normal_(dict(model.named_parameters())["{head_param}"])
    wrapper = SoftPromptWrapper.from_prompt(model, sys.argv[1], tokenizer=tok)
    with torch.no_grad():
        torch.save(wrapper(**batch(tok)).logits, sys.argv[2])  # test artefact only; prompts never use pickle
    """
)


def _roundtrip(tokenizer, tmp_path, arch, head_param):
    model = make_model(arch, seed=123)
    wrapper = SoftPromptWrapper(
        model, SoftPromptConfig(num_virtual_tokens=5, init="random"), tokenizer=tokenizer
    )
    opt = torch.optim.AdamW([p for p in wrapper.parameters() if p.requires_grad], lr=0.05)
    for _ in range(3):  # a few real training steps so prompt and head are not their initial values
        wrapper(**batch(tokenizer), labels=torch.tensor([1, 0, 1])).loss.backward()
        opt.step()
        opt.zero_grad()
    path = wrapper.save_prompt(tmp_path / "p.safetensors")
    with torch.no_grad():
        expected = wrapper(**batch(tokenizer)).logits
    out = tmp_path / "logits.pt"
    code = CHILD.format(arch=arch, head_param=head_param)
    subprocess.run([sys.executable, "-c", code, str(path), str(out)], cwd=REPO, check=True, timeout=120)
    got = torch.load(out, weights_only=True)
    assert torch.equal(got, expected), (got - expected).abs().max()


def test_fresh_process_bitwise_identical_bert(tokenizer, tmp_path):
    _roundtrip(tokenizer, tmp_path, "bert", "classifier.weight")


def test_fresh_process_bitwise_identical_roberta(tokenizer, tmp_path):
    _roundtrip(tokenizer, tmp_path, "roberta", "classifier.out_proj.weight")
