"""``softprompt export`` and what a merged export refuses: deep prompts, another base model's prompt, a
non-empty folder without ``--overwrite``, slow tokenizers, quantized backbones; folders written whole."""

from __future__ import annotations

import json

import pytest
import torch
import transformers

from softprompt import SoftPromptConfig, SoftPromptWrapper
from softprompt.cli import main
from tests.conftest import make_model, make_tokenizer


def _prompt_file(tmp_path, model_dir, *, deep=False, other_base=False):
    model = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir)
    if other_base:
        model = make_model("bert", "seq", seed=7)  # same shapes, other weights
    w = SoftPromptWrapper(
        model, SoftPromptConfig(num_virtual_tokens=3, deep=deep), tokenizer=make_tokenizer()
    )
    path = tmp_path / ("deep.safetensors" if deep else "other.safetensors" if other_base else "p.safetensors")
    w.save_prompt(path)
    return path, w


def _one_line_error(capsys) -> str:
    """The command's error: one line, ``softprompt export: error: ...`` (progress bars of loading aside)."""
    lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(lines) == 1 and lines[0].startswith("softprompt export: error:"), lines
    return lines[0]


def test_cli_export_writes_a_model_folder(assets, tmp_path, capsys):
    model_dir, _ = assets
    path, w = _prompt_file(tmp_path, model_dir)
    out = tmp_path / "exported"
    assert main(["export", str(path), "--model", str(model_dir), "--output", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= set(report["files"])
    config = json.loads((out / "config.json").read_text())
    assert config["softprompt_export"]["num_virtual_tokens"] == 3
    assert config["vocab_size"] == w.model.config.vocab_size + 3
    assert "exported with softprompt" in (out / "README.md").read_text().lower()
    model = transformers.AutoModelForSequenceClassification.from_pretrained(out)
    tok = transformers.AutoTokenizer.from_pretrained(out)
    enc = tok(["great film"], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(
            model(**enc).logits, w.eval()(**w.tokenize(["great film"])).logits, rtol=0, atol=1e-5
        )


def test_cli_refuses_a_non_empty_folder_without_overwrite(assets, tmp_path, capsys):
    model_dir, _ = assets
    path, _ = _prompt_file(tmp_path, model_dir)
    out = tmp_path / "exported"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    capsys.readouterr()
    assert main(["export", str(path), "--model", str(model_dir), "--output", str(out)]) == 2
    assert "--overwrite" in _one_line_error(capsys)
    assert (out / "keep.txt").read_text() == "mine"
    assert main(["export", str(path), "--model", str(model_dir), "--output", str(out), "--overwrite"]) == 0
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no stage left behind


@pytest.mark.parametrize("kind", ["deep", "other_base"])
def test_cli_refuses_deep_and_foreign_prompts(assets, tmp_path, capsys, kind):
    model_dir, _ = assets
    path, _ = _prompt_file(tmp_path, model_dir, deep=kind == "deep", other_base=kind == "other_base")
    out = tmp_path / "exported"
    capsys.readouterr()
    assert main(["export", str(path), "--model", str(model_dir), "--output", str(out)]) == 2
    err = _one_line_error(capsys)
    assert ("deep prompt" in err) if kind == "deep" else ("another base model" in err)
    assert not out.exists()


def test_cli_quantize_needs_onnx(assets, tmp_path, capsys):
    model_dir, _ = assets
    path, _ = _prompt_file(tmp_path, model_dir)
    assert (
        main(["export", str(path), "--model", str(model_dir), "--output", str(tmp_path / "o"), "--quantize"])
        == 2
    )
    assert "--format onnx" in capsys.readouterr().err


def test_wrapper_refuses_deep_prompt_and_quantized_backbone(tmp_path, tokenizer):
    deep = SoftPromptWrapper(
        make_model(), SoftPromptConfig(num_virtual_tokens=2, deep=True), tokenizer=tokenizer
    )
    with pytest.raises(ValueError, match="deep prompt"):
        deep.export_merged(tmp_path / "deep")
    quantized = SoftPromptWrapper(make_model(), SoftPromptConfig(num_virtual_tokens=2), tokenizer=tokenizer)
    quantized.quantize_backbone()
    with pytest.raises(ValueError, match="int8"):
        quantized.export_merged(tmp_path / "q")
    assert not (tmp_path / "deep").exists() and not (tmp_path / "q").exists()


def test_slow_or_missing_tokenizer_is_refused(tmp_path):
    w = SoftPromptWrapper(make_model(), SoftPromptConfig(num_virtual_tokens=2, placement="prepend"))
    with pytest.raises(ValueError, match="tokenizer"):
        w.export_merged(tmp_path / "none")

    class Slow:
        is_fast = False

    w.tokenizer = Slow()
    with pytest.raises(ValueError, match="fast"):
        w.export_merged(tmp_path / "slow")


def test_a_failed_write_leaves_nothing_and_keeps_the_old_folder(tmp_path, tokenizer, monkeypatch):
    w = SoftPromptWrapper(make_model(), SoftPromptConfig(num_virtual_tokens=2), tokenizer=tokenizer)
    out = w.export_merged(tmp_path / "m")
    before = (out / "model.safetensors").read_bytes()

    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(transformers.PreTrainedTokenizerFast, "save_pretrained", broken)
    with torch.no_grad():
        w.slot().prompt.add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        w.export_merged(tmp_path / "m", overwrite=True)
    assert (out / "model.safetensors").read_bytes() == before  # the old folder, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no stage or backup left


def test_exported_tokenizer_keeps_the_text_room_of_the_wrapper(tmp_path, tokenizer):
    """``model_max_length`` stays the model's positions: the K prompt tokens count inside it, so truncation keeps
    ``positions - K`` tokens of text and specials, what ``wrapper.tokenize`` keeps."""
    w = SoftPromptWrapper(make_model(), SoftPromptConfig(num_virtual_tokens=5), tokenizer=tokenizer)
    out = w.export_merged(tmp_path / "m")
    merged = transformers.AutoTokenizer.from_pretrained(out)
    text = " ".join(["film"] * 200)
    ids = merged(text, truncation=True)["input_ids"]
    wrapped = w.tokenize([text])["input_ids"][0].tolist()
    assert len(ids) == merged.model_max_length == tokenizer.model_max_length
    assert ids[:1] + ids[6:] == wrapped  # the same text tokens, the prompt's five ids after [CLS]
    assert merged.convert_ids_to_tokens(ids[1:6]) == [f"<softprompt_{i}>" for i in range(5)]
    pair = merged("great film", "dull", return_special_tokens_mask=True)
    assert pair["special_tokens_mask"][1:6] == [1] * 5  # pipelines skip them like [CLS]
    assert pair.word_ids()[1:6] == [None] * 5  # so word-aligned token labels give them -100


def test_exporting_from_an_exported_tokenizer_is_refused(tmp_path, tokenizer):
    w = SoftPromptWrapper(make_model(), SoftPromptConfig(num_virtual_tokens=2), tokenizer=tokenizer)
    out = w.export_merged(tmp_path / "m")
    again = SoftPromptWrapper(
        transformers.AutoModelForSequenceClassification.from_pretrained(out),
        SoftPromptConfig(num_virtual_tokens=2),
        tokenizer=transformers.AutoTokenizer.from_pretrained(out),
    )
    with pytest.raises(ValueError, match="exported from a prompt before"):
        again.export_merged(tmp_path / "m2")


def test_decoder_classifier_exports_pad_on_the_right(tmp_path):
    """A decoder classifier's folder pads on the right whatever its base tokenizer did: then a padded batch gives each
    text the positions it has alone (transformers' decoders number left padding in), so batches are exact too."""
    from tests.decoder_models import make_decoder
    from tests.test_export import TEXTS, decoder_tokenizer

    tok = decoder_tokenizer("llama")
    tok.padding_side = "left"
    w = SoftPromptWrapper(make_decoder("llama"), SoftPromptConfig(num_virtual_tokens=3), tokenizer=tok).eval()
    out = w.export_merged(tmp_path / "llama")
    merged = transformers.AutoTokenizer.from_pretrained(out)
    assert merged.padding_side == "right"
    model = transformers.AutoModelForSequenceClassification.from_pretrained(out).eval()
    with torch.no_grad():
        got = model(**merged(TEXTS, padding=True, return_tensors="pt")).logits
        torch.testing.assert_close(got, w(**w.tokenize(TEXTS)).logits, rtol=0, atol=1e-5)


def test_cli_onnx_format_writes_both_graphs(assets, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    model_dir, _ = assets
    path, w = _prompt_file(tmp_path, model_dir)
    out = tmp_path / "onnx"
    args = [
        "export",
        str(path),
        "--model",
        str(model_dir),
        "--output",
        str(out),
        "--format",
        "onnx",
        "--quantize",
    ]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["format"] == "onnx"
    assert {"model.onnx", "model_quantized.onnx", "model.safetensors", "tokenizer.json"} <= set(
        report["files"]
    )


def test_scaled_embeddings_get_the_prompt_back(tmp_path):
    """BART with ``scale_embedding=True`` multiplies looked-up rows by sqrt(d): the export stores prompt / scale, so
    the folder's encoder sees the prompt's own vectors and generates what the wrapper does."""
    from tests.decoder_models import seq2seq_config
    from tests.test_export import TEXTS, decoder_tokenizer

    config = seq2seq_config("bart")
    config.scale_embedding = True
    torch.manual_seed(0)
    model = transformers.AutoModelForSeq2SeqLM.from_config(config).eval()
    assert float(model.get_input_embeddings().embed_scale) != 1.0
    w = SoftPromptWrapper(
        model, SoftPromptConfig(num_virtual_tokens=3), tokenizer=decoder_tokenizer("bart")
    ).eval()
    with torch.no_grad():
        w.slot().prompt.normal_()
    out = w.export_merged(tmp_path / "bart")
    merged = transformers.AutoModelForSeq2SeqLM.from_pretrained(out).eval()
    tok = transformers.AutoTokenizer.from_pretrained(out)
    for text in TEXTS:
        got = merged.generate(**tok([text], return_tensors="pt"), max_new_tokens=6, do_sample=False)
        want = w.generate(**w.tokenizer([text], return_tensors="pt"), max_new_tokens=6, do_sample=False)
        assert got.tolist() == want.tolist()
