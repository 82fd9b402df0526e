"""``Trainer.predict`` on softprompt's trainers returns row ``i`` for row ``i``, length-grouped training or not.

transformers 5.25 length-groups the evaluation sampler when ``train_sampling_strategy="group_by_length"``
(softprompt's default for training), so a plain ``Trainer.predict`` returns its rows shuffled with nothing
to say which is which. ``PromptTrainer`` and the fine-tuning trainer predict in dataset order.
"""

from __future__ import annotations

import pytest
import torch
import transformers

from softprompt import (
    PromptTrainer,
    SoftPromptConfig,
    SoftPromptWrapper,
    default_training_args,
    predict_logits,
)
from softprompt.finetune.trainer import FinetuneTrainer
from tests.conftest import WORDS, make_model

# lengths from 1 to 24 words, shuffled: a length-grouped sampler reorders them
TEXTS = [
    " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(n))
    for i, n in enumerate([5, 1, 24, 3, 17, 9, 2, 12] * 3)
]


def _rows(tokenizer):
    import datasets

    encoded = tokenizer(TEXTS, truncation=True, max_length=40)
    return datasets.Dataset.from_dict({**encoded, "labels": [i % 2 for i in range(len(TEXTS))]})


def _args(tmp_path, strategy: str) -> transformers.TrainingArguments:
    return default_training_args(tmp_path, learning_rate=1e-2, per_device_train_batch_size=4,
                                 per_device_eval_batch_size=4, has_eval=False, train_sampling_strategy=strategy)  # fmt: skip


@pytest.mark.parametrize("strategy", ["group_by_length", "random"])
def test_prompt_trainer_predicts_in_dataset_order(tokenizer, tmp_path, strategy):
    wrapper = SoftPromptWrapper(
        make_model("bert"), SoftPromptConfig(num_virtual_tokens=3), tokenizer=tokenizer
    )
    trainer = PromptTrainer(wrapper, args=_args(tmp_path, strategy), processing_class=tokenizer)
    got = torch.as_tensor(trainer.predict(_rows(tokenizer)).predictions)
    torch.testing.assert_close(got, predict_logits(wrapper, tokenizer, TEXTS), atol=1e-4, rtol=1e-4)


def test_finetune_trainer_predicts_in_dataset_order(tokenizer, tmp_path):
    model = make_model("bert")
    trainer = FinetuneTrainer(
        model=model, args=_args(tmp_path, "group_by_length"), processing_class=tokenizer
    )
    got = torch.as_tensor(trainer.predict(_rows(tokenizer)).predictions)
    torch.testing.assert_close(got, predict_logits(model, tokenizer, TEXTS), atol=1e-4, rtol=1e-4)


def test_a_plain_trainer_would_not(tokenizer, tmp_path):
    """What the override fixes: transformers' own Trainer shuffles predict's rows under the flag."""
    model = make_model("bert")
    trainer = transformers.Trainer(
        model=model, args=_args(tmp_path, "group_by_length"), processing_class=tokenizer
    )
    got = torch.as_tensor(trainer.predict(_rows(tokenizer)).predictions)
    if torch.allclose(got, predict_logits(model, tokenizer, TEXTS), atol=1e-4):
        pytest.skip("this transformers no longer length-groups Trainer.predict: the override is a no-op now")
    assert sorted(got[:, 0].tolist()) == pytest.approx(
        sorted(predict_logits(model, tokenizer, TEXTS)[:, 0].tolist()), abs=1e-4
    )
