"""SoftPromptConfig: validation and the JSON round trip that prompt files rely on."""

import pytest

from softprompt import Overflow, Placement, PromptInit, SoftPromptConfig


def test_defaults_and_enums_from_strings():
    cfg = SoftPromptConfig(init="labels", placement="prepend", overflow="truncate")
    assert cfg.init is PromptInit.LABELS
    assert cfg.placement is Placement.PREPEND
    assert cfg.overflow is Overflow.TRUNCATE
    assert SoftPromptConfig().placement is Placement.AFTER_CLS
    assert SoftPromptConfig().train_head is True


def test_json_round_trip():
    cfg = SoftPromptConfig(num_virtual_tokens=7, init="text", init_text="movie review sentiment", seed=3)
    assert SoftPromptConfig.from_json(cfg.to_json()) == cfg
    assert cfg.to_dict()["init"] == "text"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"num_virtual_tokens": 0}, "num_virtual_tokens must be between 1 and 65,536"),
        ({"num_virtual_tokens": 10**18}, "num_virtual_tokens must be between 1 and 65,536"),
        ({"num_virtual_tokens": 2.5}, "num_virtual_tokens must be an int"),
        ({"num_virtual_tokens": True}, "num_virtual_tokens must be an int"),
        ({"init": "zeros"}, "'zeros' is not one of"),
        ({"placement": "middle"}, "'middle' is not one of"),
        ({"overflow": "wrap"}, "'wrap' is not one of"),
        ({"init": "text"}, "needs a non-empty init_text"),
        ({"init": "text", "init_text": "  "}, "needs a non-empty init_text"),
        ({"label_words": "positive"}, "label_words must be a list"),
        ({"label_words": ["ok", ""]}, "label_words must be a list"),
        ({"vocab_sample_size": 0}, "vocab_sample_size"),
        ({"train_head": "yes"}, "train_head"),
        ({"seed": "1"}, "seed must be an int"),
    ],
)
def test_bad_values_name_the_field(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        SoftPromptConfig(**kwargs)


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(ValueError, match="unknown SoftPromptConfig fields \\['colour'\\]"):
        SoftPromptConfig.from_dict({"colour": "red"})
    with pytest.raises(ValueError, match="expects a dict"):
        SoftPromptConfig.from_dict(["num_virtual_tokens"])


# --- RunConfig (softprompt/run_config.py): TrainingArguments overrides, the resolved-config file ---


def test_run_config_training_args_are_checked():
    from softprompt import RunConfig

    cfg = RunConfig(
        model="m", data="d", training_args={"gradient_accumulation_steps": 2, "optim": "adafactor"}
    )
    assert cfg.training_args == {"gradient_accumulation_steps": 2, "optim": "adafactor"}
    assert RunConfig(model="m", data="d").training_args == {}
    bad = {
        "learning_rate": "learning_rate is RunConfig's lr",
        "per_device_train_batch_size": "RunConfig's batch_size",
        "label_names": "label_names cannot be set",
        "weight_decy": "did you mean 'weight_decay'",
    }
    for key, needle in bad.items():
        with pytest.raises(ValueError, match=needle):
            RunConfig(model="m", data="d", training_args={key: 1})
    with pytest.raises(TypeError, match="training_args must be a dict"):
        RunConfig(model="m", data="d", training_args=[("optim", "adafactor")])


def test_run_config_saved_json_reruns_it(tmp_path):
    import dataclasses
    import json

    from softprompt import RunConfig

    cfg = RunConfig(
        model="m", data="d", lr=0.1, label_names=["a", "b"], resume=True, training_args={"weight_decay": 0.1}
    )
    saved = json.loads(cfg.save(tmp_path / "run" / "run_config.json").read_text())
    assert set(saved) == {f.name for f in dataclasses.fields(RunConfig)}
    assert RunConfig(**saved) == dataclasses.replace(
        cfg, resume=False
    )  # resume/overwrite: not settings of a run


def test_every_run_config_field_documents_itself():
    import dataclasses

    from softprompt import RunConfig

    for field in dataclasses.fields(RunConfig):
        text = field.metadata.get("help", "")
        assert text and "%" not in text, field.name  # argparse formats help with %


def test_run_config_settings_are_keyword_only():
    """Fields are added over releases; a positional caller would get values in the wrong settings."""
    from softprompt import RunConfig

    assert RunConfig("bert-base-uncased", "my/data").text_column == "text"
    with pytest.raises(TypeError, match="positional"):
        RunConfig("bert-base-uncased", "my/data", "review")
