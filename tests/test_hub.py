"""Prompt folders and the Hub: save_pretrained / from_pretrained / load_pretrained / push_to_hub.

Folder tests use real files; Hub tests run the real ``huggingface_hub`` client against a stand-in Hub
on 127.0.0.1 (:mod:`tests.hub_server`), with offline mode turned off for those tests only. Every
parity check is exact (``torch.equal``): the same ops run on the same values.
"""

import json
import re
import warnings

import pytest
import torch
import yaml
from huggingface_hub import HfApi, ModelCard, constants
from huggingface_hub.errors import RevisionNotFoundError
from safetensors import safe_open

from softprompt import SoftPromptConfig, SoftPromptWrapper, export_peft_adapter
from softprompt.core.constants import CARD_NAME, PEFT_CONFIG_NAME, PEFT_WEIGHTS_NAME, PROMPT_NAME
from softprompt.hub import peft_export
from tests.conftest import HEADS, HIDDEN, LAYERS, bare_arithmetic, batch, make_model
from tests.hub_server import serving

N = 4
SEED = 7  # backbone weights: every _model() is the same model
TOKEN = "hf_stand_in_token"
LABELS = {0: "negative", 1: "positive"}
PEFT_FILES = {PEFT_CONFIG_NAME, PEFT_WEIGHTS_NAME}


def _model(name_or_path: str = ""):
    model = make_model("bert", "seq", seed=SEED)
    model.config.id2label, model.config.label2id = dict(LABELS), {v: k for k, v in LABELS.items()}
    model.config.name_or_path = name_or_path
    return model


def _trained(tokenizer, *, placement="prepend", deep=False, seed=0, name_or_path=""):
    """A wrapper whose prompt and head took optimiser steps (so they differ from a fresh model's) and
    whose temperature is not 1, so a round trip that dropped anything shows."""
    cfg = SoftPromptConfig(num_virtual_tokens=N, placement=placement, init="random", deep=deep, seed=seed)
    wrapper = SoftPromptWrapper(_model(name_or_path), cfg, tokenizer=tokenizer)
    opt = torch.optim.AdamW([p for p in wrapper.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):
        wrapper(**batch(tokenizer), labels=torch.tensor([1, 0, 1])).loss.backward()
        opt.step()
        opt.zero_grad()
    wrapper.prompts["default"].temperature = 1.7
    return wrapper


def _logits(wrapper, tokenizer):
    with torch.no_grad():  # the bare model's arithmetic, as PEFT runs it: compared bit for bit
        return bare_arithmetic(wrapper)(**batch(tokenizer)).logits


def _files(folder):
    return {p.name for p in folder.iterdir()}


def _assert_same_prompt(back, wrapper, tokenizer):
    assert torch.equal(_logits(back, tokenizer), _logits(wrapper, tokenizer))
    assert back.id2label == LABELS and back.task == wrapper.task
    assert back.prompts["default"].temperature == 1.7
    assert back.prompt_config == wrapper.prompt_config


def _front_matter(text):
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert match, text[:200]
    return yaml.safe_load(match.group(1))


# ---------------------------------------------------------------- folders


@pytest.mark.parametrize("placement", ["prepend", "after_cls"])
def test_folder_round_trip_gives_the_same_logits(tokenizer, tmp_path, placement):
    wrapper = _trained(tokenizer, placement=placement)
    assert wrapper.save_pretrained(tmp_path / "p") == tmp_path / "p"
    expected = {PROMPT_NAME, CARD_NAME} | (PEFT_FILES if placement == "prepend" else set())
    assert _files(tmp_path / "p") == expected
    back = SoftPromptWrapper.from_pretrained(_model(), tmp_path / "p", tokenizer=tokenizer)
    _assert_same_prompt(back, wrapper, tokenizer)
    assert back.prompt_config.placement.value == placement
    # the prompt file in the folder is the unit: byte for byte what save_prompt writes
    wrapper.save_prompt(tmp_path / "single.safetensors")
    assert (tmp_path / "p" / PROMPT_NAME).read_bytes() == (tmp_path / "single.safetensors").read_bytes()


def test_deep_prompt_round_trip_and_no_peft_files(tokenizer, tmp_path):
    wrapper = _trained(tokenizer, deep=True)
    wrapper.save_pretrained(str(tmp_path / "deep"))
    assert _files(tmp_path / "deep") == {PROMPT_NAME, CARD_NAME}  # PEFT cannot hold a deep prompt
    back = SoftPromptWrapper.from_pretrained(_model(), str(tmp_path / "deep"), tokenizer=tokenizer)
    _assert_same_prompt(back, wrapper, tokenizer)
    assert torch.equal(back.prompts["default"].deep.folded(), wrapper.prompts["default"].deep.folded())
    card = (tmp_path / "deep" / CARD_NAME).read_text()
    assert "No PEFT adapter: PEFT cannot hold this prompt exactly: prompt 'default' is a deep prompt" in card
    assert "deep-prompt" in _front_matter(card)["tags"] and "peft" not in _front_matter(card)["tags"]
    assert 'f.get_tensor("deep_prompts")' in card and "later layer too" in card


def test_peft_loads_the_same_folder_with_the_same_logits(tokenizer, tmp_path):
    peft = pytest.importorskip("peft")
    wrapper = _trained(tokenizer)
    wrapper.save_pretrained(tmp_path / "p")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PEFT's deprecation noise
        peft_model = peft.PeftModel.from_pretrained(_model(), str(tmp_path / "p")).eval()
    with torch.no_grad():
        theirs = peft_model(**batch(tokenizer)).logits
    assert torch.equal(theirs, _logits(wrapper, tokenizer))


def test_peft_files_of_an_earlier_save_are_removed_when_they_no_longer_fit(tokenizer, tmp_path):
    folder = tmp_path / "p"
    (folder / "keep").mkdir(parents=True)
    (folder / "results.json").write_text("{}")  # other files are left alone
    _trained(tokenizer).save_pretrained(folder)
    assert _files(folder) >= PEFT_FILES
    after_cls = _trained(tokenizer, placement="after_cls", seed=1)
    after_cls.save_pretrained(folder)
    assert _files(folder) == {PROMPT_NAME, CARD_NAME, "keep", "results.json"}
    card = (folder / CARD_NAME).read_text()
    assert "placement='after_cls', but PEFT prompt tuning only prepends" in card
    back = SoftPromptWrapper.from_pretrained(_model(), folder, tokenizer=tokenizer)
    _assert_same_prompt(back, after_cls, tokenizer)
    # peft=False on a prompt PEFT could hold: no PEFT files either
    _trained(tokenizer).save_pretrained(folder, peft=False)
    assert not PEFT_FILES & _files(folder)
    assert "No PEFT adapter: not written (peft=False)." in (folder / CARD_NAME).read_text()


def test_peft_true_refuses_a_prompt_peft_cannot_hold_before_writing_anything(tokenizer, tmp_path):
    folder = tmp_path / "p"
    _trained(tokenizer).save_pretrained(folder)
    before = {name: (folder / name).read_bytes() for name in _files(folder)}
    with pytest.raises(ValueError, match="placement='after_cls', but PEFT prompt tuning only prepends"):
        _trained(tokenizer, placement="after_cls", seed=1).save_pretrained(folder, peft=True)
    assert {name: (folder / name).read_bytes() for name in _files(folder)} == before
    with pytest.raises(ValueError, match="is a deep prompt"):
        _trained(tokenizer, deep=True).save_pretrained(tmp_path / "new", peft=True)
    assert not (tmp_path / "new").exists()


def test_model_card(tokenizer, tmp_path):
    wrapper = _trained(tokenizer, name_or_path="google-bert/bert-base-uncased")
    metrics = {"eval_accuracy": 0.8741234, "eval_loss": 0.31, "epoch": 3, "note": "seed 1 | 2k reviews"}
    wrapper.save_pretrained(tmp_path / "p", metrics=metrics)
    text = (tmp_path / "p" / CARD_NAME).read_text()
    meta = _front_matter(text)
    assert meta["library_name"] == "softprompt"
    assert meta["base_model"] == "google-bert/bert-base-uncased"
    assert meta["pipeline_tag"] == "text-classification"
    assert {"softprompt", "prompt-tuning", "peft", "classification"} <= set(meta["tags"])
    card = ModelCard.load(tmp_path / "p" / CARD_NAME)  # what the Hub client reads
    assert card.data.library_name == "softprompt"
    assert "| labels | 0: negative, 1: positive |" in text
    assert "| task | classification, 2 labels |" in text
    assert "| softmax temperature | 1.7 |" in text
    assert "| eval_accuracy | 0.874123 |" in text and "| epoch | 3 |" in text
    assert "| note | seed 1 \\| 2k reviews |" in text  # a | in a value does not break the table
    folder = str(tmp_path / "p")
    assert f'SoftPromptWrapper.from_pretrained(model, "{folder}", tokenizer=tokenizer)' in text
    assert (
        'AutoModelForSequenceClassification.from_pretrained("google-bert/bert-base-uncased", num_labels=2)'
        in text
    )
    assert f'PeftModel.from_pretrained(model, "{folder}")' in text
    assert 'print(wrapper.predict(["An example text."]))' in text
    assert f'path = "{tmp_path / "p" / PROMPT_NAME}"' in text and 'f.get_tensor("prompt_embeddings")' in text


def test_save_pretrained_replaces_links_in_the_folder_and_never_writes_through_them(tokenizer, tmp_path):
    """A README.md (or prompt file) in the target folder that links elsewhere, as in a cloned repo or the Hub
    cache's snapshots, is replaced by the folder's own file; the file it pointed to is left as it was."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "notes.md").write_text("mine")
    (elsewhere / "weights.bin").write_bytes(b"mine")
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / CARD_NAME).symlink_to(elsewhere / "notes.md")
    (folder / PROMPT_NAME).symlink_to(elsewhere / "weights.bin")
    wrapper = _trained(tokenizer)
    wrapper.save_pretrained(folder)
    assert (elsewhere / "notes.md").read_text() == "mine" and (
        elsewhere / "weights.bin"
    ).read_bytes() == b"mine"
    assert not (folder / CARD_NAME).is_symlink() and (folder / CARD_NAME).read_text().startswith("---")
    assert not (folder / PROMPT_NAME).is_symlink()
    back = SoftPromptWrapper.from_pretrained(_model(), folder, tokenizer=tokenizer)
    assert torch.equal(_logits(back, tokenizer), _logits(wrapper, tokenizer))


def test_model_card_escapes_hostile_labels_and_paths(tokenizer, tmp_path):
    """A label with a line break Python knows (\\r, U+2028, U+0085) stays in its table row; a quote in the folder's
    path cannot end the card's Python strings, so copying the example runs nothing but the example."""
    import ast

    wrapper = _trained(tokenizer, name_or_path='org/model"); import os; os.system("touch PWNED"); ("')
    wrapper.slot().id2label = {0: "neg\rative", 1: "pos\u2028it|ive\x85!"}
    folder = tmp_path / 'p"); import os; os.system("touch PWNED"); ("'
    wrapper.save_pretrained(folder)
    text = (folder / CARD_NAME).read_text()
    labels = [line for line in text.splitlines() if line.startswith("| labels |")]
    assert labels == ["| labels | 0: neg ative, 1: pos it\\|ive ! |"]
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 3
    for block in blocks:
        tree = ast.parse(block)  # a broken string would be a syntax error, or worse, more code
        imported = {
            a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
        }
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert imported <= {"transformers", "softprompt", "peft", "safetensors", "huggingface_hub"}, imported
        calls = [
            n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "system"
        ]
        assert not calls
    strings = {n.value for b in blocks for n in ast.walk(ast.parse(b)) if isinstance(n, ast.Constant)}
    assert str(folder) in strings and str(folder / PROMPT_NAME) in strings
    assert 'org/model"); import os; os.system("touch PWNED"); ("' in strings


def test_model_card_of_a_local_base_model_has_no_base_model_and_no_metrics(tokenizer, tmp_path):
    wrapper = _trained(tokenizer, placement="after_cls", name_or_path=str(tmp_path))  # a local path
    wrapper.save_pretrained(tmp_path / "p")
    text = (tmp_path / "p" / CARD_NAME).read_text()
    assert "base_model" not in _front_matter(text)  # the Hub refuses paths there
    assert "No metrics were recorded with this prompt." in text
    assert "PeftModel" not in text and "No PEFT adapter: PEFT cannot hold this prompt exactly" in text


def test_peft_file_names_are_peft_exports():
    assert (PEFT_CONFIG_NAME, PEFT_WEIGHTS_NAME) == (peft_export.CONFIG_NAME, peft_export.WEIGHTS_NAME)


def test_a_folder_holding_only_a_peft_adapter_loads(tokenizer, tmp_path):
    peft = pytest.importorskip("peft")
    config = peft.PromptTuningConfig(
        task_type="SEQ_CLS",
        num_virtual_tokens=N,
        token_dim=HIDDEN,
        num_layers=LAYERS,
        num_attention_heads=HEADS,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PEFT's deprecation noise
        peft_model = peft.get_peft_model(_model(), config).eval()
    with torch.no_grad():
        for p in peft_model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p))
    peft_model.save_pretrained(str(tmp_path / "peft"))
    back = SoftPromptWrapper.from_pretrained(_model(), tmp_path / "peft", tokenizer=tokenizer)
    with torch.no_grad():
        assert torch.equal(_logits(back, tokenizer), peft_model(**batch(tokenizer)).logits)


def test_load_pretrained_adds_slots(tokenizer, tmp_path):
    first, second = _trained(tokenizer), _trained(tokenizer, placement="after_cls", seed=1)
    first.save_pretrained(tmp_path / "sentiment")
    second.save_pretrained(tmp_path / "other")
    wrapper = SoftPromptWrapper.from_pretrained(_model(), tmp_path / "sentiment", tokenizer=tokenizer)
    assert wrapper.load_pretrained(tmp_path / "other", activate=True) == "other"
    assert wrapper.prompt_names == ["default", "other"] and wrapper.active_prompt == "other"
    assert torch.equal(_logits(wrapper, tokenizer), _logits(second, tokenizer))
    with pytest.raises(ValueError, match="a prompt named 'other' is loaded already; pass replace=True"):
        wrapper.load_pretrained(tmp_path / "other")
    assert wrapper.load_pretrained(tmp_path / "sentiment", "other", replace=True) == "other"
    assert torch.equal(_logits(wrapper, tokenizer), _logits(first, tokenizer))
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['cache'\]"):
        wrapper.load_pretrained(tmp_path / "other", "x", cache="nope")


def test_bad_inputs(tokenizer, tmp_path):
    wrapper = _trained(tokenizer)
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ValueError, match="save_pretrained folder .* is a file; give a folder"):
        wrapper.save_pretrained(tmp_path / "a-file")
    with pytest.raises(ValueError, match="cannot be made: .* is a file"):
        wrapper.save_pretrained(tmp_path / "a-file" / "below")
    with pytest.raises(TypeError, match="save_directory must be a folder path, got int"):
        wrapper.save_pretrained(3)
    with pytest.raises(KeyError, match="no prompt named 'nope'"):
        wrapper.save_pretrained(tmp_path / "p", name="nope")
    with pytest.raises(TypeError, match="metrics must be a mapping"):
        wrapper.save_pretrained(tmp_path / "p", metrics=[0.9])
    with pytest.raises(TypeError, match=r"pass a flat mapping such as results\['eval_metrics'\]"):
        wrapper.save_pretrained(tmp_path / "p", metrics={"eval": {"accuracy": 0.9}})
    with pytest.raises(ValueError, match="peft must be 'auto', True or False, got 'yes'"):
        wrapper.save_pretrained(tmp_path / "p", peft="yes")
    assert not (tmp_path / "p").exists()  # nothing written by a refused call

    model = _model()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no prompt.safetensors .* wrapper.save_pretrained"):
        SoftPromptWrapper.from_pretrained(model, tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="is neither an existing folder nor a Hub repo id"):
        SoftPromptWrapper.from_pretrained(model, tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="is neither an existing folder nor a Hub repo id"):
        SoftPromptWrapper.from_pretrained(model, "./no/such/folder")
    wrapper.save_pretrained(tmp_path / "p")
    with pytest.raises(
        ValueError, match="is a file, not a folder; load a prompt file with SoftPromptWrapper.from_prompt"
    ):
        SoftPromptWrapper.from_pretrained(model, tmp_path / "p" / PROMPT_NAME)
    with pytest.raises(ValueError, match="revision='v1' applies to Hub repos, but .* is a local folder"):
        SoftPromptWrapper.from_pretrained(model, tmp_path / "p", revision="v1")
    with pytest.raises(TypeError, match="expected a folder or a Hub repo id, got int"):
        SoftPromptWrapper.from_pretrained(model, 42)
    with pytest.raises(ValueError, match="num_labels=2 but the model has 3"):
        SoftPromptWrapper.from_pretrained(make_model("bert", "seq", num_labels=3), tmp_path / "p")

    with pytest.raises(ValueError, match="Repo id must"):
        wrapper.push_to_hub("a/b/c")
    with pytest.raises(ValueError, match="create_pr=True opens a pull request against the default branch"):
        wrapper.push_to_hub("me/x", create_pr=True, revision="v2")
    with pytest.raises(RuntimeError, match="push_to_hub needs the network and HF_HUB_OFFLINE=1 is set"):
        wrapper.push_to_hub("me/x")  # the tests run offline


# ---------------------------------------------------------------- the Hub, through a stand-in


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """The stand-in Hub, as HF_ENDPOINT would make it, with offline mode off for this test only."""
    with serving(monkeypatch, tmp_path / "hf-home", token=TOKEN) as server:
        yield server
    # everything the client asked for is implemented, except the agent registry it fetches once per process
    assert set(server.unhandled) <= {("GET", "/api/agent-harnesses")}


def _pull(tokenizer, repo_id, cache, hub, **kwargs):
    return SoftPromptWrapper.from_pretrained(
        _model(), repo_id, tokenizer=tokenizer, cache_dir=cache, endpoint=hub.url, **kwargs
    )


def test_push_then_download_revisions_and_offline(tokenizer, tmp_path, hub, monkeypatch):
    v1, v2 = _trained(tokenizer), _trained(tokenizer, placement="after_cls", seed=1)
    info = v1.push_to_hub("me/sentiment", token=TOKEN, endpoint=hub.url, metrics={"eval_accuracy": 0.9})
    assert info.oid == hub.repos["me/sentiment"].refs["main"] and str(info).endswith(f"/commit/{info.oid}")
    assert set(hub.files("me/sentiment")) == {".gitattributes", PROMPT_NAME, CARD_NAME} | PEFT_FILES
    card = hub.files("me/sentiment")[CARD_NAME].decode()
    assert 'from_pretrained(model, "me/sentiment"' in card and "| eval_accuracy | 0.9 |" in card
    assert 'path = hf_hub_download("me/sentiment", "prompt.safetensors")' in card
    info2 = v2.push_to_hub("me/sentiment", token=TOKEN, endpoint=hub.url, revision="v2")
    assert hub.repos["me/sentiment"].refs == {"main": info.oid, "v2": info2.oid}
    assert PEFT_FILES.isdisjoint(hub.files("me/sentiment", "v2"))  # after_cls: deleted on that branch

    cache = tmp_path / "cache"
    _assert_same_prompt(_pull(tokenizer, "me/sentiment", cache, hub), v1, tokenizer)
    _assert_same_prompt(_pull(tokenizer, "me/sentiment", cache, hub, revision="v2"), v2, tokenizer)
    _assert_same_prompt(_pull(tokenizer, "me/sentiment", cache, hub, revision=info.oid), v1, tokenizer)
    with pytest.raises(RevisionNotFoundError):
        _pull(tokenizer, "me/sentiment", cache, hub, revision="v3")

    seen = len(hub.requests)
    _assert_same_prompt(_pull(tokenizer, "me/sentiment", cache, hub, local_files_only=True), v1, tokenizer)
    with pytest.raises(FileNotFoundError, match=r"local_files_only=True forbids downloading it") as err:
        _pull(tokenizer, "me/sentiment", tmp_path / "empty-cache", hub, local_files_only=True)
    assert "\n" not in str(err.value)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    _assert_same_prompt(_pull(tokenizer, "me/sentiment", cache, hub), v1, tokenizer)
    _assert_same_prompt(_pull(tokenizer, "me/sentiment", cache, hub, revision="v2"), v2, tokenizer)
    assert len(hub.requests) == seen  # from the cache alone
    with pytest.raises(FileNotFoundError) as err:
        _pull(tokenizer, "me/sentiment", tmp_path / "empty-cache", hub)
    message = str(err.value)
    assert "\n" not in message and "is not in the Hugging Face cache" in message
    assert "HF_HUB_OFFLINE=1 forbids downloading it: run once with network access" in message


def test_push_replaces_stale_peft_files_and_load_pretrained_hot_swaps(tokenizer, tmp_path, hub):
    v1, deep = _trained(tokenizer), _trained(tokenizer, deep=True, seed=2)
    v1.push_to_hub("me/swap", token=TOKEN, endpoint=hub.url)
    assert set(hub.files("me/swap")) >= PEFT_FILES
    deep.push_to_hub("me/swap", token=TOKEN, endpoint=hub.url, commit_message="Deep prompt")
    assert set(hub.files("me/swap")) == {".gitattributes", PROMPT_NAME, CARD_NAME}  # no stale PEFT adapter
    wrapper = SoftPromptWrapper(_model(), SoftPromptConfig(num_virtual_tokens=2), tokenizer=tokenizer)
    name = wrapper.load_pretrained("me/swap", activate=True, cache_dir=tmp_path / "c", endpoint=hub.url)
    assert name == "swap" and wrapper.active_prompt == "swap"
    assert torch.equal(_logits(wrapper, tokenizer), _logits(deep, tokenizer))


def test_hub_repo_errors_and_a_peft_only_repo(tokenizer, tmp_path, hub):
    with pytest.raises(FileNotFoundError, match="the Hub has no repo 'me/missing'"):
        _pull(tokenizer, "me/missing", tmp_path / "c", hub)
    api = HfApi(endpoint=hub.url, token=TOKEN)
    api.create_repo("me/plain")
    with pytest.raises(
        FileNotFoundError, match=r"'me/plain' \(revision 'main'\) holds no prompt.safetensors nor"
    ):
        _pull(tokenizer, "me/plain", tmp_path / "c", hub)
    # a PEFT adapter pushed by PEFT users (export_peft_adapter writes PEFT's own layout) loads too
    wrapper = _trained(tokenizer)
    export_peft_adapter(wrapper, tmp_path / "adapter")
    api.upload_folder(repo_id="me/plain", folder_path=tmp_path / "adapter")
    back = _pull(tokenizer, "me/plain", tmp_path / "c", hub)
    assert torch.equal(_logits(back, tokenizer), _logits(wrapper, tokenizer))
    # a private repo needs the token to be seen
    wrapper.push_to_hub("me/private", token=TOKEN, endpoint=hub.url, private=True)
    with pytest.raises(FileNotFoundError, match="or it is private or gated: pass token="):
        _pull(tokenizer, "me/private", tmp_path / "c", hub)
    _assert_same_prompt(_pull(tokenizer, "me/private", tmp_path / "c", hub, token=TOKEN), wrapper, tokenizer)
    assert json.loads(hub.files("me/private")[PEFT_CONFIG_NAME])["peft_type"] == "PROMPT_TUNING"
    with safe_open(str(tmp_path / "adapter" / PEFT_WEIGHTS_NAME), "pt") as fh:
        assert "prompt_embeddings" in fh.keys()  # noqa: SIM118
