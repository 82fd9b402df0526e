"""PEFT interop: exported adapters load in PEFT with identical logits, PEFT adapters import with identical logits.

Every parity check is exact (``torch.equal``): both sides run the same ops on the same inputs.
PEFT is needed only here (``pytest.importorskip``); the module under test never imports it.
"""

import json
import warnings

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from softprompt import SoftPromptConfig, SoftPromptWrapper
from softprompt.wrapper.peft import export_peft_adapter, import_peft_adapter, load_peft_adapter
from tests.conftest import HEADS, HIDDEN, LAYERS, bare_arithmetic, batch, make_model

peft = pytest.importorskip("peft")

N = 4
SEED = 7  # backbone weights: make_model(arch, task, seed=SEED) twice gives identical models
TASK_TYPES = {"seq": "SEQ_CLS", "token": "TOKEN_CLS", "base": "FEATURE_EXTRACTION"}


def _inputs(tokenizer, arch):
    inputs = batch(tokenizer)
    if arch == "distilbert":
        inputs.pop("token_type_ids")
    return inputs


def _trained_wrapper(tokenizer, arch, task, **config):
    """A wrapper whose prompt and head took real optimiser steps, so they differ from a fresh model's."""
    model = make_model(arch, task, seed=SEED)
    cfg = SoftPromptConfig(num_virtual_tokens=N, placement="prepend", init="random", **config)
    wrapper = SoftPromptWrapper(model, cfg, tokenizer=tokenizer)
    opt = torch.optim.AdamW([p for p in wrapper.parameters() if p.requires_grad], lr=0.1)
    inputs = _inputs(tokenizer, arch)
    for _ in range(2):
        if task == "seq":
            loss = wrapper(**inputs, labels=torch.tensor([1, 0, 1])).loss
        elif task == "token":
            loss = wrapper(**inputs, labels=torch.ones_like(inputs["input_ids"])).loss
        else:
            loss = wrapper(**inputs).last_hidden_state.pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
    return wrapper


def _peft_from_folder(arch, task, folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PEFT's deprecation noise
        return peft.PeftModel.from_pretrained(make_model(arch, task, seed=SEED), str(folder)).eval()


def _peft_output(peft_model, inputs, task):
    """PEFT's logits / features with the virtual positions dropped (the wrapper drops them too)."""
    if task == "base":  # PeftModelForFeatureExtraction drops token_type_ids (all zeros here) with a warning
        inputs = {k: v for k, v in inputs.items() if k != "token_type_ids"}
    with torch.no_grad():
        out = peft_model(**inputs)
    if task == "seq":
        return out.logits
    return (out.logits if task == "token" else out.last_hidden_state)[:, N:]


def _our_output(wrapper, inputs, task):
    bare_arithmetic(wrapper)  # PEFT runs the bare model: compare bit for bit
    with torch.no_grad():
        out = wrapper(**inputs)
    return out.last_hidden_state if task == "base" else out.logits


# ---------------------------------------------------------------- export: softprompt -> PEFT


@pytest.mark.parametrize(
    ("arch", "task"),
    [("bert", "seq"), ("bert", "token"), ("bert", "base"), ("roberta", "seq"), ("distilbert", "seq")],
)
def test_exported_adapter_gives_peft_identical_logits(tokenizer, tmp_path, arch, task):
    wrapper = _trained_wrapper(tokenizer, arch, task)
    fresh = dict(make_model(arch, task, seed=SEED).named_parameters())
    slot = wrapper.prompts["default"]
    # the test has teeth: a head PEFT did not restore would give the fresh model's logits
    assert all(not torch.equal(v, fresh[k]) for k, v in slot.head_params().items())

    export_peft_adapter(wrapper, tmp_path / "adapter")
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["peft_type"] == "PROMPT_TUNING" and config["task_type"] == TASK_TYPES[task]
    with safe_open(str(tmp_path / "adapter" / "adapter_model.safetensors"), "pt") as fh:
        assert fh.get_tensor("prompt_embeddings").dtype == torch.float32

    peft_model = _peft_from_folder(arch, task, tmp_path / "adapter")
    assert torch.equal(peft_model.prompt_encoder["default"].embedding.weight, slot.prompt)
    inputs = _inputs(tokenizer, arch)
    assert torch.equal(_our_output(wrapper, inputs, task), _peft_output(peft_model, inputs, task))  # exact


@pytest.mark.parametrize(
    ("arch", "task"), [("bert", "seq"), ("roberta", "seq"), ("bert", "token"), ("bert", "base")]
)
def test_export_writes_the_files_and_keys_peft_writes(tmp_path, arch, task):
    """Same adapter_config fields and tensor names as PEFT's own save_pretrained for that model."""
    ref = peft.get_peft_model(
        make_model(arch, task, seed=SEED),
        peft.PromptTuningConfig(task_type=TASK_TYPES[task], num_virtual_tokens=N),
    )
    ref.save_pretrained(str(tmp_path / "ref"))
    wrapper = SoftPromptWrapper(
        make_model(arch, task, seed=SEED), SoftPromptConfig(num_virtual_tokens=N, placement="prepend")
    )
    export_peft_adapter(wrapper, tmp_path / "ours")
    theirs_cfg = json.loads((tmp_path / "ref" / "adapter_config.json").read_text())
    ours_cfg = json.loads((tmp_path / "ours" / "adapter_config.json").read_text())
    assert set(ours_cfg) == set(theirs_cfg)
    for key in (
        "peft_type",
        "task_type",
        "num_virtual_tokens",
        "token_dim",
        "num_transformer_submodules",
        "num_layers",
        "num_attention_heads",
    ):
        assert ours_cfg[key] == theirs_cfg[key], key
    theirs = load_file(str(tmp_path / "ref" / "adapter_model.safetensors"))
    ours = load_file(str(tmp_path / "ours" / "adapter_model.safetensors"))
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


def test_export_named_slot_and_extras_round_trip(tokenizer, tmp_path):
    wrapper = _trained_wrapper(tokenizer, "bert", "seq")
    other = SoftPromptConfig(
        num_virtual_tokens=2, placement="prepend", init="text", init_text="rate the film"
    )
    wrapper.add_slot("other", wrapper._new_slot(other))
    wrapper.prompts["other"].temperature = 1.5
    wrapper.prompts["other"].id2label = {0: "neg", 1: "pos"}
    export_peft_adapter(wrapper, tmp_path / "other", name="other")
    back = import_peft_adapter(make_model("bert", seed=SEED), tmp_path / "other")
    slot = back.prompts["default"]
    assert slot.config == other  # softprompt's own config travels in the safetensors header; PEFT ignores it
    assert slot.temperature == 1.5 and slot.id2label == {0: "neg", 1: "pos"}
    assert torch.equal(slot.prompt, wrapper.prompts["other"].prompt)
    with pytest.raises(KeyError, match="no prompt named 'nope'"):
        export_peft_adapter(wrapper, tmp_path / "x", name="nope")


def test_export_refuses_after_cls(tokenizer, tmp_path):
    wrapper = SoftPromptWrapper(make_model(), SoftPromptConfig(num_virtual_tokens=N), tokenizer=tokenizer)
    with pytest.raises(
        ValueError, match=r"placement='after_cls'.*PEFT prompt tuning only prepends.*placement='prepend'"
    ):
        export_peft_adapter(wrapper, tmp_path / "a")
    assert not (tmp_path / "a").exists()  # nothing written


def test_export_refuses_a_deep_prompt(tmp_path):
    wrapper = SoftPromptWrapper(make_model(), SoftPromptConfig(num_virtual_tokens=N, placement="prepend"))
    wrapper.prompts[
        "default"
    ].config.deep = True  # the field another change adds; set by hand, not waiting for it
    with pytest.raises(ValueError, match="deep prompt.*cannot represent"):
        export_peft_adapter(wrapper, tmp_path / "a")
    assert not (tmp_path / "a").exists()


def test_export_refuses_a_head_peft_cannot_restore(tmp_path):
    model = make_model()
    model.logit_bias = torch.nn.Parameter(
        torch.zeros(2)
    )  # a head parameter on no module: not a modules_to_save
    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=N, placement="prepend"))
    with pytest.raises(ValueError, match="'logit_bias' sits directly on BertForSequenceClassification"):
        export_peft_adapter(wrapper, tmp_path / "a")
    import transformers

    from tests.conftest import model_config

    mlm = transformers.BertForMaskedLM(model_config("bert")).eval()
    wrapper = SoftPromptWrapper(mlm, SoftPromptConfig(num_virtual_tokens=N, placement="prepend"))
    with pytest.raises(ValueError, match="not BertForMaskedLM"):
        export_peft_adapter(wrapper, tmp_path / "a")
    assert not (tmp_path / "a").exists()


def test_export_refuses_non_finite_values(tmp_path):
    wrapper = SoftPromptWrapper(make_model(), SoftPromptConfig(num_virtual_tokens=N, placement="prepend"))
    with torch.no_grad():
        wrapper.prompts["default"].prompt[0, 0] = float("nan")
    with pytest.raises(ValueError, match="'prompt_embeddings' has 1 NaN/inf"):
        export_peft_adapter(wrapper, tmp_path / "a")
    with torch.no_grad():  # what import refuses, export refuses too: no adapter softprompt cannot read back
        wrapper.prompts["default"].prompt[0, 0] = 1e30
    with pytest.raises(ValueError, match=r"'prompt_embeddings' has values beyond ±10000"):
        export_peft_adapter(wrapper, tmp_path / "a")
    assert not (tmp_path / "a").exists()


# ---------------------------------------------------------------- import: PEFT -> softprompt


def _peft_adapter(tmp_path, arch, task):
    """A PEFT-made adapter with a non-initial prompt and head; returns (PeftModel, folder)."""
    peft_model = peft.get_peft_model(
        make_model(arch, task, seed=SEED),
        # dims given: PEFT cannot read DistilBERT's (`dim`, `n_heads`) from its config by itself
        peft.PromptTuningConfig(
            task_type=TASK_TYPES[task],
            num_virtual_tokens=N,
            token_dim=HIDDEN,
            num_layers=LAYERS,
            num_attention_heads=HEADS,
        ),
    ).eval()
    with torch.no_grad():
        for p in peft_model.parameters():
            if p.requires_grad:  # the prompt and PEFT's trainable copy of the head
                p.add_(torch.randn_like(p))
    folder = tmp_path / "peft"
    peft_model.save_pretrained(str(folder))
    return peft_model, folder


@pytest.mark.parametrize(
    ("arch", "task"),
    [("bert", "seq"), ("bert", "token"), ("bert", "base"), ("roberta", "seq"), ("distilbert", "seq")],
)
def test_imported_peft_adapter_gives_identical_logits(tokenizer, tmp_path, arch, task):
    peft_model, folder = _peft_adapter(tmp_path, arch, task)
    wrapper = import_peft_adapter(make_model(arch, task, seed=SEED), folder, tokenizer=tokenizer)
    slot = wrapper.prompts["default"]
    assert slot.config.placement.value == "prepend" and slot.config.num_virtual_tokens == N
    assert slot.prompt.dtype == torch.float32
    fresh = dict(make_model(arch, task, seed=SEED).named_parameters())
    assert all(
        not torch.equal(v, fresh[k]) for k, v in slot.head_params().items()
    )  # the adapter's head, not the model's
    inputs = _inputs(tokenizer, arch)
    assert torch.equal(_our_output(wrapper, inputs, task), _peft_output(peft_model, inputs, task))  # exact


def test_peft_round_trip_through_softprompt_is_lossless(tokenizer, tmp_path):
    peft_model, folder = _peft_adapter(tmp_path, "bert", "seq")
    wrapper = import_peft_adapter(make_model("bert", seed=SEED), folder, tokenizer=tokenizer)
    export_peft_adapter(wrapper, tmp_path / "again")
    before = load_file(str(folder / "adapter_model.safetensors"))
    after = load_file(str(tmp_path / "again" / "adapter_model.safetensors"))
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_load_peft_adapter_adds_a_slot(tokenizer, tmp_path):
    peft_model, folder = _peft_adapter(tmp_path, "bert", "seq")
    wrapper = SoftPromptWrapper(
        make_model("bert", seed=SEED), SoftPromptConfig(num_virtual_tokens=3), tokenizer=tokenizer
    )
    assert load_peft_adapter(wrapper, folder, activate=True) == "peft"
    inputs = batch(tokenizer)
    assert torch.equal(_our_output(wrapper, inputs, "seq"), _peft_output(peft_model, inputs, "seq"))
    with pytest.raises(ValueError, match="a prompt named 'peft' is loaded already; pass replace=True"):
        load_peft_adapter(wrapper, folder)
    load_peft_adapter(wrapper, folder, replace=True)


# ---------------------------------------------------------------- import errors


@pytest.fixture
def exported(tmp_path):
    wrapper = SoftPromptWrapper(
        make_model(seed=SEED), SoftPromptConfig(num_virtual_tokens=N, placement="prepend")
    )
    return export_peft_adapter(wrapper, tmp_path / "adapter")


def _edit_config(folder, **changes):
    path = folder / "adapter_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.parametrize("peft_type", ["LORA", "PREFIX_TUNING", "P_TUNING"])
def test_import_refuses_other_peft_types(exported, peft_type):
    _edit_config(exported, peft_type=peft_type)
    with pytest.raises(ValueError, match=f"peft_type='{peft_type}'; softprompt reads only PROMPT_TUNING"):
        import_peft_adapter(make_model(seed=SEED), exported)


def test_import_refuses_two_transformer_submodules(exported):
    _edit_config(exported, num_transformer_submodules=2)
    with pytest.raises(ValueError, match="num_transformer_submodules=2"):
        import_peft_adapter(make_model(seed=SEED), exported)


def test_import_refuses_other_token_dim(exported):
    with pytest.raises(
        ValueError, match="token_dim 32 but AlbertForSequenceClassification's input embeddings have 16"
    ):
        import_peft_adapter(make_model("albert"), exported)
    _edit_config(exported, token_dim=48)
    with pytest.raises(
        ValueError, match=r"prompt_embeddings has shape \(4, 32\) but the config says \(4, 48\)"
    ):
        import_peft_adapter(make_model(seed=SEED), exported)


def test_import_refuses_wrong_task_and_head_shape(exported):
    with pytest.raises(
        ValueError, match="task_type='SEQ_CLS' but BertForTokenClassification needs 'TOKEN_CLS'"
    ):
        import_peft_adapter(make_model("bert", "token"), exported)
    with pytest.raises(
        ValueError,
        match=r"'base_model.classifier.bias' has shape \(2,\), the model's has \(3,\); load the model with num_labels=2",
    ):
        import_peft_adapter(make_model(num_labels=3), exported)


def test_import_refuses_missing_files_and_pickle(exported, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        import_peft_adapter(make_model(), tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no adapter_config.json"):
        import_peft_adapter(make_model(), tmp_path / "empty")
    (exported / "adapter_model.safetensors").rename(exported / "kept.safetensors")
    with pytest.raises(FileNotFoundError, match="no adapter_model.safetensors"):
        import_peft_adapter(make_model(), exported)
    (exported / "adapter_model.bin").write_bytes(b"not unpickled")
    with pytest.raises(ValueError, match="only adapter_model.bin \\(a pickle\\).*never unpickles"):
        import_peft_adapter(make_model(), exported)


def test_import_refuses_tensors_it_cannot_hold(exported):
    path = exported / "adapter_model.safetensors"
    tensors = load_file(str(path))
    pooler = make_model(seed=SEED).bert.pooler.dense.weight.detach()
    save_file({**tensors, "base_model.bert.pooler.dense.weight": pooler.clone()}, str(path))
    import_peft_adapter(make_model(seed=SEED), exported)  # a backbone tensor equal to the model's is fine
    save_file({**tensors, "base_model.bert.pooler.dense.weight": pooler + 1}, str(path))
    with pytest.raises(
        ValueError,
        match="changes backbone tensor 'bert.pooler.dense.weight'; softprompt keeps the backbone frozen",
    ):
        import_peft_adapter(make_model(seed=SEED), exported)
    save_file({**tensors, "base_model.nowhere.weight": pooler}, str(path))
    with pytest.raises(ValueError, match="'base_model.nowhere.weight' names no parameter"):
        import_peft_adapter(make_model(seed=SEED), exported)
    save_file({**tensors, "prompt_embeddings": torch.full((N, 32), float("inf"))}, str(path))
    with pytest.raises(ValueError, match="'prompt_embeddings' has 128 NaN/inf"):
        import_peft_adapter(make_model(seed=SEED), exported)


def test_import_holds_adapters_to_the_prompt_file_limits(exported):
    """Huge values (1e30 once predicted NaN), integer tensors and an out-of-range temperature are refused, as a
    prompt file's are; so is an adapter_config.json nested deeper than any config (a RecursionError before)."""
    path = exported / "adapter_model.safetensors"
    tensors, header = load_file(str(path)), _header(path)
    cases = [
        ({**tensors, "prompt_embeddings": torch.full((N, 32), 1e30)}, header, r"values beyond ±10000"),
        ({**tensors, "prompt_embeddings": torch.ones(N, 32, dtype=torch.int64)}, header, "is torch.int64"),
        (tensors, {**header, "softprompt_temperature": "1e9"}, r"temperature 1000000000.0 is outside"),
        (tensors, {**header, "softprompt_temperature": "nan"}, "temperature nan is outside"),
        (
            tensors,
            {**header, "softprompt_id2label": '{"0": "a", "00": "b"}'},
            "key '00', which is not a class id",
        ),
    ]
    for changed, meta, needle in cases:
        save_file(changed, str(path), metadata=meta)
        with pytest.raises(ValueError, match=needle):
            import_peft_adapter(make_model(seed=SEED), exported)
    save_file(tensors, str(path), metadata=header)
    import_peft_adapter(make_model(seed=SEED), exported)  # the untouched adapter loads
    config = exported / "adapter_config.json"
    config.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="adapter_config.json: nested more than 32 levels deep"):
        import_peft_adapter(make_model(seed=SEED), exported)


def _header(path):
    with safe_open(str(path), framework="pt") as fh:
        return dict(fh.metadata() or {})
