"""Prompt files: one atomic, self-describing .safetensors file, validated before it touches a model."""

import json
import os
import warnings

import pytest
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import load_file, save, save_file

from softprompt import SoftPromptConfig, SoftPromptWrapper, __version__, read_prompt_file
from softprompt.files.checks import base_fingerprint
from tests.conftest import batch, make_model


@pytest.fixture
def saved(tokenizer, bert_seq, tmp_path):
    wrapper = SoftPromptWrapper(
        bert_seq,
        SoftPromptConfig(num_virtual_tokens=4, init="labels", label_words=["bad", "good"]),
        tokenizer=tokenizer,
    )
    with torch.no_grad():
        wrapper.prompts["default"].prompt.add_(0.5)  # "trained"
        wrapper.prompts["default"].head_params()["classifier.bias"].add_(1.0)
    path = wrapper.save_prompt(tmp_path / "imdb.safetensors")
    return wrapper, path


def test_file_layout_readable_with_plain_safetensors(saved):
    wrapper, path = saved
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
        prompt = f.get_tensor("prompt_embeddings")
    assert keys == {"prompt_embeddings", "head.classifier.weight", "head.classifier.bias"}
    assert prompt.dtype == torch.float32 and prompt.shape == (4, 32)
    assert torch.equal(prompt, wrapper.prompts["default"].prompt)
    assert meta["format"] == "softprompt" and meta["softprompt_version"] == __version__
    assert json.loads(meta["config"])["init"] == "labels"
    assert meta["model_type"] == "bert" and meta["embedding_dim"] == "32" and meta["num_labels"] == "2"
    assert json.loads(meta["id2label"]) == {"0": "LABEL_0", "1": "LABEL_1"}
    assert not list(path.parent.glob(".*.tmp"))  # no temp file left behind


def test_size_for_20_tokens_bert_base_dims_2_classes(tmp_path, tokenizer):
    # hidden 768 as in bert-base; one layer and a small vocab keep the test fast: the file holds
    # only the prompt and the head, so its size does not depend on them
    cfg = transformers.BertConfig(vocab_size=len(tokenizer), hidden_size=768, num_hidden_layers=1, num_attention_heads=12,
                                  intermediate_size=64, num_labels=2, name_or_path="bert-base-uncased")  # fmt: skip
    model = transformers.BertForSequenceClassification(cfg)
    path = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=20), tokenizer=tokenizer).save_prompt(
        tmp_path / "p.safetensors"
    )
    size = os.path.getsize(path)
    assert size <= 72 * 1024, size
    assert size >= 20 * 768 * 4 + 768 * 2 * 4  # the tensors themselves, fp32


def test_round_trip_restores_prompt_head_and_logits(saved, tokenizer):
    wrapper, path = saved
    fresh = make_model(
        "bert"
    )  # same architecture, different head init would break logits if the head were not saved
    torch.nn.init.normal_(fresh.classifier.weight)
    loaded = SoftPromptWrapper.from_prompt(fresh, path, tokenizer=tokenizer)
    assert loaded.prompt_config == wrapper.prompt_config
    inputs = batch(tokenizer)
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, wrapper(**inputs).logits)


def _rewrite(path, tensors=None, metadata=None, drop=()):
    data = load_file(str(path))
    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata())
    data.update(tensors or {})
    meta.update(metadata or {})
    for key in drop:
        data.pop(key, None)
    save_file(data, str(path), metadata=meta)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"tensors": {"prompt_embeddings": torch.full((4, 32), float("nan"))}}, "has 128 NaN/inf values"),
        (
            {"tensors": {"head.classifier.bias": torch.tensor([float("inf"), 0.0])}},
            "'head.classifier.bias' has 1 NaN/inf",
        ),
        ({"drop": ["prompt_embeddings"]}, "missing tensor 'prompt_embeddings'"),
        ({"drop": ["head.classifier.weight", "head.classifier.bias"]}, "no head.\\* tensors"),
        ({"metadata": {"config": "{not json"}}, "unreadable prompt metadata"),
        ({"metadata": {"embedding_dim": "forty"}}, "unreadable prompt metadata"),
        ({"metadata": {"format": "other"}}, "not a softprompt prompt file"),
        ({"metadata": {"format_version": "99"}}, "format version '99' is not supported"),
        (
            {"tensors": {"prompt_embeddings": torch.zeros(3, 32)}},
            "shape \\(3, 32\\) but the config says 4 virtual tokens",
        ),
        ({"tensors": {"extra": torch.zeros(1)}}, "unexpected tensors \\['extra'\\]"),
        ({"metadata": {"id2label": "[1, 2]"}}, "id2label must map class ids to names, got list"),
        ({"metadata": {"id2label": '{"x": "a"}'}}, "id2label has key 'x', which is not a class id"),
        # ambiguous or made-up class names: two keys for one id, a null name (once read as the name "None")
        (
            {"metadata": {"id2label": '{"0": "a", "00": "b", "1": "c"}'}},
            "id2label has key '00', which is not",
        ),
        ({"metadata": {"id2label": '{"0": null, "1": "b"}'}}, "every class needs a name"),
        ({"metadata": {"id2label": '{"0": "a", "2": "b"}'}}, "must name the classes 0..1"),
        ({"metadata": {"task": '{"type": "regression"}'}}, "task 'regression' does not fit num_labels=2"),
        ({"metadata": {"task": '{"type": "ner"}'}}, "unreadable prompt metadata.*'ner' is not one of"),
    ],
)
def test_corrupt_files_are_rejected_naming_the_file(saved, change, needle):
    _, path = saved
    _rewrite(path, **change)
    with pytest.raises(ValueError, match=needle) as err:
        read_prompt_file(path)
    assert str(path) in str(err.value)


def test_not_a_safetensors_file_and_missing_file(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x80\x04 this is a pickle, not safetensors")
    with pytest.raises(ValueError, match="not a readable .safetensors file"):
        read_prompt_file(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_prompt_file(tmp_path / "nope.safetensors")


def test_mismatched_models_are_rejected_before_anything_changes(saved, tokenizer):
    _, path = saved
    with pytest.raises(
        ValueError, match="embedding dim 32 but AlbertForSequenceClassification's input embeddings have 16"
    ):
        SoftPromptWrapper.from_prompt(make_model("albert"), path, tokenizer=tokenizer)
    with pytest.raises(ValueError, match="num_labels=2 but the model has 3"):
        SoftPromptWrapper.from_prompt(make_model("bert", num_labels=3), path, tokenizer=tokenizer)
    with pytest.raises(ValueError, match="num_labels=2 but the model has None"):
        SoftPromptWrapper.from_prompt(make_model("bert", "base"), path, tokenizer=tokenizer)
    with pytest.raises(ValueError, match="head tensors .* do not match"):
        SoftPromptWrapper.from_prompt(make_model("roberta"), path, tokenizer=tokenizer)
    target = SoftPromptWrapper(make_model("bert", num_labels=3), tokenizer=tokenizer)
    before = target.prompt_names
    with pytest.raises(ValueError):
        target.load_prompt(path, name="imdb")
    assert target.prompt_names == before  # nothing was added


def test_other_base_model_warns_or_errors(tokenizer, tmp_path):
    """The file's fingerprint of the base model (type, sizes, a hash of the input embeddings) decides,
    not the folder name: MiniLM's folder is just ``model``."""
    model = make_model("bert")
    model.config._name_or_path = "org/model-a"
    path = SoftPromptWrapper(model, tokenizer=tokenizer).save_prompt(tmp_path / "a.safetensors")
    assert read_prompt_file(path).base_fingerprint["model_type"] == "bert"
    same = make_model("bert")  # the same weights under another name: no complaint
    same.config._name_or_path = "elsewhere/model"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SoftPromptWrapper.from_prompt(same, path, tokenizer=tokenizer, strict_base_model=True)
    other = make_model("bert", seed=1)  # same architecture and name, other weights
    other.config._name_or_path = "org/model-a"
    with pytest.warns(UserWarning, match="embeddings_sha256"):
        SoftPromptWrapper.from_prompt(other, path, tokenizer=tokenizer)
    with pytest.raises(ValueError, match="trained on another base model"):
        SoftPromptWrapper.from_prompt(other, path, tokenizer=tokenizer, strict_base_model=True)


def test_fingerprint_survives_a_bf16_backbone(tokenizer):
    model = make_model("bert")
    before = base_fingerprint(model)
    wrapper = SoftPromptWrapper(model, tokenizer=tokenizer)
    wrapper.cast_backbone(torch.bfloat16)
    assert base_fingerprint(wrapper.model) == before
    assert base_fingerprint(make_model("bert", seed=1)) != before


def test_files_without_a_fingerprint_compare_names(tokenizer, tmp_path):
    model = make_model("bert")
    model.config._name_or_path = "org/model-a"
    path = SoftPromptWrapper(model, tokenizer=tokenizer).save_prompt(tmp_path / "a.safetensors")
    with safe_open(str(path), framework="pt") as fh:  # as written before fingerprints were recorded
        meta = {k: v for k, v in fh.metadata().items() if k != "base_fingerprint"}
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    old = tmp_path / "old.safetensors"
    old.write_bytes(save(tensors, metadata=meta))
    other = make_model("bert")
    other.config._name_or_path = "org/model-b"
    with pytest.warns(
        UserWarning, match="trained on base model 'org/model-a' but this model is 'org/model-b'"
    ):
        SoftPromptWrapper.from_prompt(other, old, tokenizer=tokenizer)


def test_save_is_atomic(saved, monkeypatch):
    wrapper, path = saved
    original = path.read_bytes()
    with torch.no_grad():
        wrapper.prompts["default"].prompt.add_(1.0)

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        wrapper.save_prompt(path)
    assert path.read_bytes() == original
    assert not list(path.parent.glob(".*.tmp"))


def test_refuses_to_save_nan_and_to_write_a_directory(saved, tmp_path):
    wrapper, path = saved
    with pytest.raises(IsADirectoryError):
        wrapper.save_prompt(tmp_path)
    with torch.no_grad():
        wrapper.prompts["default"].prompt[0, 0] = float("nan")
    original = path.read_bytes()
    with pytest.raises(ValueError, match="NaN/inf"):
        wrapper.save_prompt(path)
    assert path.read_bytes() == original


def test_bare_model_prompt_has_no_head(tokenizer, tmp_path):
    model = make_model("bert", "base")
    path = SoftPromptWrapper(model, tokenizer=tokenizer).save_prompt(tmp_path / "f.safetensors")
    pf = read_prompt_file(path)
    assert pf.head == {} and pf.num_labels is None
    SoftPromptWrapper.from_prompt(model, path, tokenizer=tokenizer)
