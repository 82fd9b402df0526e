"""Text-to-label: a language model classifies by generating the class's word (Lester et al. 2021).

Predictions are checked against the bare model's own greedy ``generate`` run on each text alone with
the prompt spliced in by hand (the same text, label and probability), and ``train_prompt``'s
per-epoch accuracy against ``evaluate_model`` and ``predict`` on the same rows.
"""

import datasets
import pandas as pd
import pytest
import torch
import transformers

from softprompt import (
    AutoModelForTextToLabel,
    GeneratedPrediction,
    SoftPromptConfig,
    SoftPromptWrapper,
    Task,
    evaluate_model,
    load_data,
    tokenize_text_to_label,
    train_prompt,
)
from softprompt.data.targets import encode_targets
from softprompt.tasks.label_words import prompt_targets, text_to_label_rows
from tests.conftest import CLS_ID, SEP_ID, make_tokenizer
from tests.decoder_models import decoder_config, seq2seq_config

N = 4
MAX_LENGTH = 32
POSITIVE = [
    "great film",
    "superb acting",
    "loved it",
    "fantastic story",
    "best movie ever",
    "really good plot",
]
NEGATIVE = ["awful film", "dull acting", "hated it", "boring story", "worst movie ever", "really bad plot"]
TEXTS = POSITIVE + NEGATIVE
CLASSES = [1] * 6 + [0] * 6
NAMES = {0: "negative", 1: "positive"}


def _tokenizer():
    tok = make_tokenizer()  # [CLS] text [SEP]; [CLS] is Llama's and BART's BOS here
    tok.eos_token = "[SEP]"
    return tok


def _model(family: str, names=NAMES, seed: int = 0):
    config = seq2seq_config(family) if family in ("t5", "bart") else decoder_config(family)
    if names is not None:
        config.id2label, config.label2id = dict(names), {v: k for k, v in names.items()}
    # larger initial weights than the defaults: a tiny random model then learns from its prompt alone
    setattr(
        config,
        *{"bart": ("init_std", 0.3), "t5": ("initializer_factor", 1.0)}.get(
            family, ("initializer_range", 0.2)
        ),
    )
    torch.manual_seed(seed)
    return AutoModelForTextToLabel.from_config(config).eval()


def _wrap(family: str, **config):
    config = {"num_virtual_tokens": N, "init": "random", **config}
    return SoftPromptWrapper(_model(family), SoftPromptConfig(**config), tokenizer=_tokenizer())


def _data() -> datasets.DatasetDict:
    frame = pd.DataFrame({"text": TEXTS, "label": [NAMES[c] for c in CLASSES]})
    split = datasets.Dataset.from_pandas(frame)
    return datasets.DatasetDict({"train": split, "validation": split})


def _train(wrapper, steps: int, lr: float) -> None:
    """A few Adam steps on the whole toy set (faster than Trainer for a warm start)."""
    decoder_only = wrapper._support.generation == "causal"
    data = load_data(_data(), task="text-to-label")
    rows = tokenize_text_to_label(
        data.train, wrapper.tokenizer, prompt_targets(wrapper), decoder_only=decoder_only, max_length=MAX_LENGTH,
        num_virtual_tokens=N,
    )  # fmt: skip
    collate = transformers.DataCollatorForSeq2Seq(wrapper.tokenizer, label_pad_token_id=-100)
    batch = collate([{k: row[k] for k in ("input_ids", "attention_mask", "labels")} for row in rows])
    optimizer = torch.optim.Adam([wrapper.prompts["default"].prompt], lr=lr)
    wrapper.train()
    for _ in range(steps):
        loss = wrapper(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    wrapper.eval()


def _causal_rows(data):
    words = ["negative", "positive"]
    return tokenize_text_to_label(
        data.train, _tokenizer(), words, decoder_only=True, max_length=MAX_LENGTH, num_virtual_tokens=N
    )


def _reference(wrapper, text: str) -> tuple[str, float]:
    """The bare model's greedy generation for ``text`` alone, the prompt spliced in by hand after [CLS]."""
    tok, model = wrapper.tokenizer, wrapper.model
    decoder_only = wrapper._support.generation == "causal"
    targets = encode_targets(tok, prompt_targets(wrapper), decoder_only=decoder_only)
    ids = torch.tensor([tok(text)["input_ids"]])  # [CLS] words [SEP]
    embeds = model.get_input_embeddings()(ids)
    prompt = wrapper.prompts["default"].prompt.detach().unsqueeze(0)
    spliced = torch.cat([embeds[:, :1], prompt, embeds[:, 1:]], dim=1)  # [CLS] p1..pN words [SEP]
    out = model.generate(
        inputs_embeds=spliced, max_new_tokens=max(map(len, targets)), do_sample=False, num_beams=1,
        forced_eos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        return_dict_in_generate=True, output_logits=True,
    )  # fmt: skip
    new = out.sequences[0, -len(out.logits) :].tolist()
    log_prob, kept = 0.0, []
    for step, token in enumerate(new):
        log_prob += float(out.logits[step][0].log_softmax(-1)[token])
        if token == tok.eos_token_id:
            break
        kept.append(token)
    return tok.decode(kept, skip_special_tokens=True).strip(), float(torch.tensor(log_prob).exp())


def test_the_task_loads_the_language_model_class_its_config_needs(tmp_path):
    assert Task("text-to-label").auto_model_class is AutoModelForTextToLabel
    assert Task("text2label").is_text_to_label and Task("text-to-label").best_metric == "accuracy"
    assert (
        type(AutoModelForTextToLabel.from_config(seq2seq_config("t5"))).__name__
        == "T5ForConditionalGeneration"
    )
    assert type(AutoModelForTextToLabel.from_config(decoder_config("llama"))).__name__ == "LlamaForCausalLM"
    for family in ("bart", "gpt2"):
        _model(family).save_pretrained(tmp_path / family)
        data = load_data(_data(), task="text-to-label")
        model = Task("text-to-label").auto_model_class.from_pretrained(
            tmp_path / family, **data.model_kwargs()
        )
        expected = {"bart": "BartForConditionalGeneration", "gpt2": "GPT2LMHeadModel"}[family]
        assert type(model).__name__ == expected
        wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=N), tokenizer=_tokenizer())
        assert wrapper.task == Task("text-to-label") and wrapper.id2label == NAMES


def test_load_data_reads_classification_data_and_refuses_pairs():
    data = load_data(_data(), task="text-to-label")
    assert data.task.is_text_to_label and data.label_names == ["negative", "positive"]
    assert data.train["label"] == CLASSES and data.model_kwargs()["id2label"] == NAMES
    with pytest.raises(ValueError, match="join each pair into one text"):
        load_data(_data(), task="text-to-label", text_pair_column="text")


def test_tokenized_rows_carry_the_class_words_ids():
    tok = _tokenizer()
    data = load_data(_data(), task="text-to-label")
    positive, negative = tok.convert_tokens_to_ids(["positive", "negative"])
    seq2seq = tokenize_text_to_label(data.train, tok, ["negative", "positive"], decoder_only=False)
    assert seq2seq[0]["input_ids"] == tok(TEXTS[0])["input_ids"]
    assert seq2seq[0]["labels"] == [CLS_ID, positive, SEP_ID] and seq2seq[6]["labels"] == [
        CLS_ID,
        negative,
        SEP_ID,
    ]
    causal = tokenize_text_to_label(data.train, tok, ["negative", "positive"], decoder_only=True)
    text = tok(TEXTS[0])["input_ids"]
    assert causal[0]["input_ids"] == [*text, positive, SEP_ID]
    assert causal[0]["labels"] == [-100] * len(text) + [positive, SEP_ID]
    assert set(causal.column_names) == {"input_ids", "attention_mask", "labels", "length"}
    with pytest.raises(
        ValueError, match="comes back from the tokenizer as 'positive'"
    ):  # an uncased vocabulary
        tokenize_text_to_label(data.train, tok, ["negative", "Positive"], decoder_only=False)
    without_eos = make_tokenizer()
    with pytest.raises(ValueError, match="no EOS token"):
        tokenize_text_to_label(data.train, without_eos, ["negative", "positive"], decoder_only=True)


def test_a_language_models_task_comes_from_its_class_names_or_label_words():
    plain = SoftPromptWrapper(_model("gpt2", names=None), SoftPromptConfig(num_virtual_tokens=N))
    assert plain.task is None  # transformers' placeholder names LABEL_0, LABEL_1: plain generation
    with pytest.raises(ValueError, match=r"wrapper\.generate"):
        SoftPromptWrapper(_model("gpt2", names=None), tokenizer=_tokenizer()).predict(["great film"])
    words = SoftPromptWrapper(
        _model("gpt2", names=None), SoftPromptConfig(num_virtual_tokens=N, label_words=["bad", "good"])
    )
    assert words.task.is_text_to_label and words.id2label == {0: "bad", 1: "good"}
    both = SoftPromptWrapper(
        _model("gpt2"), SoftPromptConfig(num_virtual_tokens=N, label_words=["bad", "good"])
    )
    assert both.id2label == NAMES and prompt_targets(both) == [
        "bad",
        "good",
    ]  # names stay, words are generated
    with pytest.raises(ValueError, match="has 3 words but the model's id2label names 2 classes"):
        SoftPromptWrapper(_model("gpt2"), SoftPromptConfig(num_virtual_tokens=N, label_words=["a", "b", "c"]))


@pytest.mark.parametrize(("family", "steps", "lr"), [("llama", 300, 0.1), ("bart", 800, 0.05)])
def test_predictions_are_the_bare_models_greedy_generation_read_by_exact_match(family, steps, lr):
    wrapper = _wrap(family)
    _train(wrapper, steps, lr)
    predicted = wrapper.predict(TEXTS, max_length=MAX_LENGTH, batch_size=5)
    for text, prediction in zip(TEXTS, predicted):
        generated, probability = _reference(wrapper, text)
        assert isinstance(prediction, GeneratedPrediction) and prediction.text == generated, text
        assert prediction.confidence == pytest.approx(probability, rel=1e-4, abs=1e-7)
        label = {"negative": 0, "positive": 1}.get(generated)
        assert (prediction.label, prediction.label_name) == (label, None if label is None else NAMES[label])
    if family == "llama":  # this toy set is learned: every class word comes out right
        assert [p.label for p in predicted] == CLASSES


def test_a_generation_that_names_no_class_is_reported_as_such():
    wrapper = _wrap("llama")  # untrained: it generates some other text
    predicted = wrapper.predict(TEXTS[:3], max_length=MAX_LENGTH)
    assert all(p.label is None and p.label_name is None and p.text not in NAMES.values() for p in predicted)
    assert all(0 < p.confidence < 1 for p in predicted)
    scores = evaluate_model(
        wrapper, wrapper.tokenizer, load_data(_data(), task="text-to-label").eval, max_length=MAX_LENGTH
    )
    assert (scores["eval_accuracy"], scores["eval_unknown"]) == (0.0, 1.0)


def test_prediction_runs_with_dropout_off_and_gives_each_module_its_mode_back():
    wrapper = _wrap("llama")
    wrapper.eval()
    expected = wrapper.predict(TEXTS[:3], max_length=MAX_LENGTH)
    wrapper.train()
    dropout = torch.nn.Dropout(0.5)  # a training module the wrapper's own train() leaves as it is
    wrapper.model.add_module("extra_dropout", dropout)
    dropout.train()
    before = [m.training for m in wrapper.modules()]
    assert wrapper.predict(TEXTS[:3], max_length=MAX_LENGTH) == expected
    assert [m.training for m in wrapper.modules()] == before and dropout.training


@pytest.mark.parametrize(("family", "steps", "lr"), [("llama", 150, 0.1), ("bart", 400, 0.05)])
def test_train_prompt_scores_each_epoch_as_predict_and_evaluate_model_do(tmp_path, family, steps, lr):
    wrapper = _wrap(family)
    _train(wrapper, steps, lr)  # a warm start, part of the way: some texts right, some not
    data = load_data(_data(), task="text-to-label")
    rows = text_to_label_rows(wrapper, data.train, max_length=MAX_LENGTH)  # the prompt's words, layout and N
    if family == "llama":
        assert rows["labels"] == _causal_rows(data)["labels"]
    result = train_prompt(
        wrapper, rows, rows, output_dir=tmp_path / "run", num_train_epochs=2, learning_rate=0.02,
        per_device_train_batch_size=4, per_device_eval_batch_size=5, disable_tqdm=True,
    )  # fmt: skip
    epochs = [e["eval_accuracy"] for e in result.log_history if "eval_accuracy" in e]
    assert len(epochs) >= 2
    scored = evaluate_model(wrapper, wrapper.tokenizer, data.eval, max_length=MAX_LENGTH)
    predicted = wrapper.predict(TEXTS, max_length=MAX_LENGTH)
    accuracy = sum(p.label == c for p, c in zip(predicted, CLASSES)) / len(CLASSES)
    assert result.eval_metrics["eval_accuracy"] == scored["eval_accuracy"] == accuracy == max(epochs)
    assert result.eval_metrics["eval_unknown"] == scored["eval_unknown"]
    # the file records the task and the classes: a fresh model without class names predicts the same
    again = SoftPromptWrapper.from_prompt(
        _model(family, names=None), result.prompt_path, tokenizer=_tokenizer()
    )
    assert again.task.is_text_to_label and again.id2label == NAMES
    assert again.predict(TEXTS, max_length=MAX_LENGTH) == predicted
