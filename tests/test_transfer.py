"""Prompt transfer (``init="prompt"``, ``--init-from``): averaged sources, the base-model check, the head rule."""

import pytest
import torch

from softprompt import SoftPromptConfig, SoftPromptWrapper, read_prompt_file
from softprompt.core.task import Task
from softprompt.models.transfer import transferred_prompt
from tests.conftest import HIDDEN, make_model

N = 4


def _source(tokenizer, tmp_path, name, *, seed, model=None, **config):
    wrapper = SoftPromptWrapper(
        model or make_model(),
        SoftPromptConfig(num_virtual_tokens=N, seed=seed, **config),
        tokenizer=tokenizer,
    )
    with torch.no_grad():  # a "trained" head: something other than the model's own
        for p in wrapper.slot().head_params().values():
            p.add_(float(seed))
    return wrapper, wrapper.save_prompt(tmp_path / f"{name}.safetensors")


def _target(tokenizer, files, model=None, **config):
    config = {"num_virtual_tokens": N, "init": "prompt", "init_from": [str(f) for f in files], **config}
    return SoftPromptWrapper(model or make_model(), SoftPromptConfig(**config), tokenizer=tokenizer)


def test_averages_the_sources_prompts_and_heads(tokenizer, tmp_path):
    a, path_a = _source(tokenizer, tmp_path, "a", seed=1)
    b, path_b = _source(tokenizer, tmp_path, "b", seed=2)
    target = _target(tokenizer, [path_a, path_b])
    expected = (a.slot().prompt + b.slot().prompt) / 2
    assert torch.allclose(target.slot().prompt, expected)
    for name, value in target.slot().head_params().items():  # same task and classes: the head comes too
        want = (a.slot().head_params()[name] + b.slot().head_params()[name]) / 2
        assert torch.allclose(value, want)
    assert target.slot().head_given and not a.slot().head_given  # what head_init="auto" reads
    # one source: the very prompt, so the target starts out predicting exactly what the source does
    one = _target(tokenizer, [path_a])
    inputs = dict(tokenizer(["a great day", "dull"], return_tensors="pt", padding=True))
    with torch.no_grad():
        assert torch.equal(one(**inputs).logits, a(**inputs).logits)


def test_a_run_folder_is_a_source(tokenizer, tmp_path):
    a, _ = _source(tokenizer, tmp_path, "a", seed=1)
    run = tmp_path / "run"
    run.mkdir()
    a.save_prompt(run / "prompt.safetensors")
    assert torch.equal(_target(tokenizer, [run]).slot().prompt, a.slot().prompt)


def test_head_stays_the_models_when_labels_or_task_differ(tokenizer, tmp_path):
    _, labelled = _source(tokenizer, tmp_path, "a", seed=3)
    model = make_model()
    model.config.id2label = {0: "no", 1: "yes"}  # other class names
    model.config.label2id = {"no": 0, "yes": 1}
    own = {k: v.clone() for k, v in SoftPromptWrapper(make_model(), SoftPromptConfig(num_virtual_tokens=N),
                                                       tokenizer=tokenizer).slot().head_params().items()}  # fmt: skip
    target = _target(tokenizer, [labelled], model=model)
    assert not target.slot().head_given
    for name, value in target.slot().head_params().items():
        assert torch.equal(value, own[name])
    # regression source into a 2-class target: the prompt transfers, the 1-output head cannot
    regressor = make_model(num_labels=1)
    _, rel = _source(tokenizer, tmp_path, "rel", seed=4, model=regressor)
    assert read_prompt_file(rel).task.type.value == "regression"
    target = _target(tokenizer, [rel])
    assert target.task.type.value == "classification"
    for name, value in target.slot().head_params().items():
        assert torch.equal(value, own[name])


def test_deep_vectors_transfer_from_deep_files(tokenizer, tmp_path):
    a, path_a = _source(tokenizer, tmp_path, "a", seed=1, deep=True)
    target = _target(tokenizer, [path_a], deep=True)
    assert torch.equal(target.slot().deep.vectors, a.slot().deep.vectors)
    # a shallow target takes only the input prompt
    assert _target(tokenizer, [path_a]).slot().deep is None
    # deep from shallow files: the deep vectors start as usual
    _, shallow = _source(tokenizer, tmp_path, "s", seed=2)
    fresh = SoftPromptWrapper(
        make_model(), SoftPromptConfig(num_virtual_tokens=N, deep=True), tokenizer=tokenizer
    )
    assert torch.equal(
        _target(tokenizer, [shallow], deep=True).slot().deep.vectors, fresh.slot().deep.vectors
    )
    with pytest.raises(ValueError, match="mixes deep and shallow"):
        _target(tokenizer, [path_a, shallow], deep=True)


def test_refuses_another_base_model_and_another_length(tokenizer, tmp_path):
    _, path = _source(tokenizer, tmp_path, "a", seed=1)
    other = make_model(seed=5)  # same shapes, other weights: another base model
    with pytest.raises(ValueError, match="trained on another base model"):
        _target(tokenizer, [path], model=other)
    with pytest.raises(ValueError, match="set num_virtual_tokens=4"):
        _target(tokenizer, [path], num_virtual_tokens=N + 1)
    with pytest.raises(FileNotFoundError):
        _target(tokenizer, [tmp_path / "missing.safetensors"])
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable"):
        _target(tokenizer, [tmp_path / "junk.safetensors"])


def test_config_checks(tokenizer):
    with pytest.raises(ValueError, match="needs init_from"):
        SoftPromptConfig(init="prompt")
    with pytest.raises(ValueError, match="read by init='prompt' only"):
        SoftPromptConfig(init_from=["a.safetensors"])
    with pytest.raises(ValueError, match="non-empty paths"):
        SoftPromptConfig(init="prompt", init_from=[""])
    cfg = SoftPromptConfig(init="prompt", init_from=("a.safetensors",))
    assert cfg.init_from == ["a.safetensors"] and SoftPromptConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="must be checked against the model"):
        from softprompt.models.init import initial_prompt

        initial_prompt(cfg, torch.zeros(10, HIDDEN))


def test_transferred_prompt_reports_what_it_took(tokenizer, tmp_path):
    _, path = _source(tokenizer, tmp_path, "a", seed=1)
    model = make_model()
    got = transferred_prompt(
        SoftPromptConfig(num_virtual_tokens=N, init="prompt", init_from=[str(path)]), model,
        task=Task(), id2label=model.config.id2label,
    )  # fmt: skip
    assert got.prompt.shape == (N, HIDDEN) and got.deep is None and got.head is not None
