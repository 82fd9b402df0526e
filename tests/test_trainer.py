"""PromptTrainer / train_prompt: learning, small checkpoints, best prompt kept, exact resume."""

import random
from pathlib import Path

import datasets
import pytest
import torch
import transformers

from softprompt import SoftPromptConfig, SoftPromptWrapper, read_prompt_file, tokenize_dataset, train_prompt
from softprompt.training.trainer import PROMPT_FILE_NAME
from tests.conftest import WORDS, model_config

POS, NEG = ["great", "fantastic", "superb", "loved", "best"], ["dull", "boring", "awful", "hated", "worst"]


def toy_sentiment(n_per_class: int = 48, seed: int = 0) -> datasets.Dataset:
    """Sentences of filler words with one sentiment word: learnable by a tiny random model."""
    rng = random.Random(seed)

    def row(words, label):
        filler = WORDS[:12]
        text = " ".join([*rng.choices(filler, k=3), rng.choice(words), *rng.choices(filler, k=3)])
        return {"text": text, "label": label}

    return datasets.Dataset.from_list(
        [row(POS, 1) for _ in range(n_per_class)] + [row(NEG, 0) for _ in range(n_per_class)]
    )


def learnable_wrapper(tokenizer, n=4, **config):
    """Tiny BERT with a wider init than the default 0.02, so its [CLS] output depends on the input."""
    torch.manual_seed(0)
    cfg = model_config("bert")
    cfg.initializer_range = 0.2
    model = transformers.BertForSequenceClassification(cfg).eval()
    return SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=n, **config), tokenizer=tokenizer)


@pytest.fixture(scope="module")
def toy(tokenizer):
    return tokenize_dataset(toy_sentiment(), tokenizer, max_length=64, num_virtual_tokens=4)


def _train(wrapper, data, out, **kw):
    kw.setdefault("num_train_epochs", 4)
    return train_prompt(wrapper, data, data, output_dir=out, learning_rate=0.05, per_device_train_batch_size=8,
                        disable_tqdm=True, logging_strategy="epoch", **kw)  # fmt: skip


def test_prompt_tuning_learns_and_keeps_the_best(tokenizer, toy, tmp_path):
    wrapper = learnable_wrapper(tokenizer)
    backbone_before = {n: p.clone() for n, p in wrapper.model.named_parameters()}
    result = _train(wrapper, toy, tmp_path, num_train_epochs=6)
    accs = [h["eval_accuracy"] for h in result.log_history if "eval_accuracy" in h and "epoch" in h][:-1]
    assert result.eval_metrics["eval_accuracy"] == max(accs)  # best epoch restored at the end
    assert result.eval_metrics["eval_accuracy"] >= 0.85
    assert all(torch.equal(backbone_before[n], p) for n, p in wrapper.model.named_parameters())
    # the final file is the kept prompt and reproduces the final evaluation
    final = read_prompt_file(result.prompt_path)
    assert torch.equal(final.prompt, wrapper.prompts["default"].prompt)


def test_checkpoints_hold_only_what_is_trained(tokenizer, toy, tmp_path):
    result = _train(learnable_wrapper(tokenizer), toy, tmp_path, num_train_epochs=1)
    ckpt = Path(result.best_checkpoint)
    names = {p.name for p in ckpt.iterdir()}
    assert PROMPT_FILE_NAME in names
    assert not names & {"model.safetensors", "pytorch_model.bin", "training_args.bin"}
    backbone_bytes = sum(p.numel() * 4 for p in learnable_wrapper(tokenizer).model.parameters())
    assert (
        sum(p.stat().st_size for p in ckpt.iterdir()) < backbone_bytes / 2
    )  # even for this 20k-param backbone


def test_resume_ends_with_the_same_prompt(tokenizer, toy, tmp_path):
    full = learnable_wrapper(tokenizer)
    _train(
        full, toy, tmp_path / "full", num_train_epochs=3, load_best_model_at_end=False, save_total_limit=None
    )

    class StopAfterEpoch(transformers.TrainerCallback):
        def on_epoch_end(self, args, state, control, **kwargs):
            if state.epoch >= 2:
                control.should_training_stop = True
            return control

    first = learnable_wrapper(tokenizer)
    _train(first, toy, tmp_path / "cut", num_train_epochs=3, load_best_model_at_end=False, save_total_limit=None,
           callbacks=[StopAfterEpoch()])  # fmt: skip
    checkpoints = sorted((tmp_path / "cut").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    resumed = learnable_wrapper(tokenizer)  # a fresh process would start from exactly this
    _train(resumed, toy, tmp_path / "cut", num_train_epochs=3, load_best_model_at_end=False, save_total_limit=None,
           resume_from_checkpoint=str(checkpoints[-1]))  # fmt: skip
    a, b = full.prompts["default"], resumed.prompts["default"]
    # observed: bitwise equal on CPU; allow float noise from a different summation order
    assert torch.allclose(a.prompt, b.prompt, atol=1e-6), (a.prompt - b.prompt).abs().max()
    assert torch.allclose(
        a.head_params()["classifier.weight"], b.head_params()["classifier.weight"], atol=1e-6
    )


def test_resume_from_any_step_replays_the_uninterrupted_run(tokenizer, toy, tmp_path):
    """Mid-epoch checkpoints with the default length-grouped sampler: every resume ends on the same prompt
    (the sampler's order depends on (seed, epoch) alone, not on the random state when an epoch starts)."""
    kw = dict(num_train_epochs=3, load_best_model_at_end=False, save_total_limit=None, save_strategy="steps",
              save_steps=5, eval_strategy="no")  # fmt: skip
    full = learnable_wrapper(tokenizer)
    _train(full, toy, tmp_path / "full", **kw)  # 12 steps an epoch: checkpoints 5, 10, 15... mid-epoch
    for step in (5, 15, 25, 35):  # steps 5, 3, 1 and 11 of epochs 1, 2, 3, 3
        resumed = learnable_wrapper(tokenizer)
        ckpt = tmp_path / "full" / f"checkpoint-{step}"
        _train(resumed, toy, tmp_path / f"resumed-{step}", **kw, resume_from_checkpoint=str(ckpt))
        a, b = full.prompts["default"], resumed.prompts["default"]
        assert torch.equal(a.prompt, b.prompt), (step, (a.prompt - b.prompt).abs().max())
        assert torch.equal(a.head_params()["classifier.weight"], b.head_params()["classifier.weight"]), step


def test_bf16_backbone_trains(tokenizer, toy, tmp_path):
    wrapper = learnable_wrapper(tokenizer)
    result = _train(wrapper, toy, tmp_path, bf16=True)
    assert wrapper.backbone_dtype == torch.bfloat16
    assert wrapper.prompts["default"].prompt.dtype == torch.float32
    assert result.eval_metrics["eval_accuracy"] >= 0.8


def test_bad_inputs_fail_before_training(tokenizer, toy, tmp_path):
    wrapper = learnable_wrapper(tokenizer)
    with pytest.raises(TypeError, match="needs a SoftPromptWrapper"):
        train_prompt(wrapper.model, toy, output_dir=tmp_path)
    with pytest.raises(ValueError, match="lacks columns \\['input_ids'\\]"):
        train_prompt(wrapper, toy.remove_columns("input_ids"), output_dir=tmp_path)
    with pytest.raises(ValueError, match="eval_dataset is empty"):
        train_prompt(wrapper, toy, toy.select([]), output_dir=tmp_path)
    with pytest.raises(TypeError, match="must be a datasets.Dataset"):
        train_prompt(wrapper, [{"input_ids": [1]}], output_dir=tmp_path)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        train_prompt(wrapper, toy, output_dir=tmp_path, learning_rate=0)
    no_tok = SoftPromptWrapper(wrapper.model, SoftPromptConfig(placement="prepend"))
    with pytest.raises(ValueError, match="needs the wrapper's tokenizer"):
        train_prompt(no_tok, toy, output_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # nothing was written
