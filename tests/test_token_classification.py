"""Token classification end to end on tiny models: tags -> sub-word labels -> collator -> train -> seqeval -> entities.

The tokenizer here is a fast WordPiece tokenizer with a few ``##`` pieces, so words split into
sub-words (``films`` = ``film ##s``) and the first-sub-word rule is exercised.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import datasets
import numpy as np
import pytest
import seqeval.metrics
import seqeval.scheme
import torch
import transformers
from transformers import EvalPrediction

from softprompt import (
    Entity,
    SoftPromptConfig,
    SoftPromptWrapper,
    Task,
    TaskType,
    build_compute_metrics,
    compute_task_metrics,
    evaluate_model,
    load_data,
    load_metric,
    predict,
    predict_logits,
    read_prompt_file,
    tokenize_dataset,
    train_prompt,
)
from softprompt.data.words import align_tags, first_subwords
from softprompt.models.layout import IGNORE_INDEX
from softprompt.tasks import family_for
from softprompt.tasks.entities import group_entities, word_logits
from softprompt.tasks.token_classification import check_token_labels
from tests.conftest import CLS_ID, SEP_ID, VOCAB, after_cls_reference, model_config

N = 4  # virtual tokens
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
PIECES = ["##s", "##ly", "##ing", "ada", "bob", "paris", "london", "york"]
# the conftest vocabulary with its last entries swapped for sub-word pieces and names: same size, same ids
TOKEN_VOCAB = VOCAB[: -len(PIECES)] + PIECES
NAMES, CITIES = ["ada", "bob"], ["paris", "london", "york"]
OTHER = [
    "the",
    "film",
    "films",
    "was",
    "boring",
    "boringly",
    "loved",
    "acting",
    "plot",
    "very",
    "good",
    "story",
]
CONLL_DIR = Path(
    os.environ.get(
        "SOFTPROMPT_CONLL_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "conll2003"
    )
)


@pytest.fixture(scope="module")
def fast_tok() -> transformers.PreTrainedTokenizerBase:
    tok = transformers.BertTokenizer(vocab={t: i for i, t in enumerate(TOKEN_VOCAB)})
    tok.model_max_length = 64
    assert tok.is_fast and tok.tokenize("films boringly") == ["film", "##s", "boring", "##ly"]
    return tok


def _sentence(rng: random.Random) -> tuple[list[str], list[str]]:
    words, tags = [], []
    for _ in range(rng.randint(3, 8)):
        kind = rng.random()
        if kind < 0.25:  # a person, sometimes two words: B-PER I-PER
            words.append(rng.choice(NAMES))
            tags.append("B-PER")
            if rng.random() < 0.5:
                words.append(rng.choice(NAMES))
                tags.append("I-PER")
        elif kind < 0.45:
            city = rng.choice(CITIES)
            words.append(city + ("s" if rng.random() < 0.3 else ""))  # "londons": london ##s, still a place
            tags.append("B-LOC")
        else:
            words.append(rng.choice(OTHER))
            tags.append("O")
    return words, tags


def _splits(train: int = 32, test: int = 12) -> datasets.DatasetDict:
    def rows(n: int, seed: int) -> datasets.Dataset:
        rng = random.Random(seed)
        pairs = [_sentence(rng) for _ in range(n)]
        return datasets.Dataset.from_dict({"words": [w for w, _ in pairs], "ner": [t for _, t in pairs]})

    return datasets.DatasetDict({"train": rows(train, 0), "test": rows(test, 1)})


def _token_model(seed: int = 0, names: list[str] = TAGS) -> transformers.PreTrainedModel:
    torch.manual_seed(seed)
    config = model_config("bert", len(names))
    config.id2label = dict(enumerate(names))
    config.label2id = {n: i for i, n in enumerate(names)}
    return transformers.AutoModelForTokenClassification.from_config(config).eval()


def _data():
    return load_data(_splits(), tokens_column="words", tags_column="ner", label_names=TAGS)


# ---------------------------------------------------------------- the task


def test_task_knows_token_classification():
    task = Task("token_classification")
    assert task.type is TaskType.TOKEN_CLASSIFICATION and task.is_token_level and not task.is_classification
    assert task.metric_names == ("precision", "recall", "f1", "accuracy") and task.best_metric == "f1"
    assert task.auto_model_class is transformers.AutoModelForTokenClassification
    assert Task().auto_model_class is transformers.AutoModelForSequenceClassification
    assert Task.from_dict(task.to_dict()) == task and task.to_dict() == {"type": "token-classification"}
    assert Task.from_problem_type("single_label_classification", 5).type is TaskType.CLASSIFICATION
    with pytest.raises(ValueError, match="at least 2 classes"):
        task.num_labels(["O"])


# ---------------------------------------------------------------- data


def test_load_data_reads_string_tags_class_labels_and_named_ids():
    data = load_data(_splits(), tokens_column="words", tags_column="ner")  # task from the columns
    assert data.task == Task("token-classification") and data.eval_split == "test"
    assert data.label_names == ["O", "B-LOC", "B-PER", "I-PER"]  # the training split's tags, O first
    assert data.train.column_names == ["tokens", "tags"]
    row = data.train[0]
    assert len(row["tokens"]) == len(row["tags"])
    assert data.model_kwargs()["id2label"] == dict(enumerate(data.label_names))

    # tags as ClassLabel ids inside the list feature (the Hub's NER layout), default column names
    features = datasets.Features(
        {"tokens": datasets.Sequence(datasets.Value("string")), "ner_tags": datasets.Sequence(datasets.ClassLabel(names=TAGS))}
    )  # fmt: skip
    ds = datasets.Dataset.from_dict(
        {"tokens": [["ada", "met", "bob"]], "ner_tags": [[1, 0, 1]]}, features=features
    )
    data = load_data(ds, task="token-classification", eval_split=None)
    assert data.label_names == TAGS and data.train[0]["tags"] == [1, 0, 1]

    ids = datasets.Dataset.from_dict({"tokens": [["ada", "met", "bob"]], "tags": [[1, 0, 1]]})
    data = load_data(ids, tags_column="tags", label_names=TAGS, eval_split=None)
    assert data.id2label[1] == "B-PER"


@pytest.mark.parametrize(
    ("rows", "kwargs", "match"),
    [
        ({"tokens": [["a", "b"]], "ner_tags": [["O"]]}, {}, "row 0 has 1 tags in column 'ner_tags' for 2 words"),
        ({"tokens": [["a"]], "ner_tags": [[0]]}, {}, "integer tags without names; pass label_names="),
        ({"tokens": [["a", "b"]], "ner_tags": [["O", "PER"]]}, {}, r"\['PER'\] are not tags like 'O', 'B-PER'"),
        ({"tokens": [["a", ""]], "ner_tags": [["O", "O"]]}, {}, "row 0 has an empty word ''"),
        ({"tokens": ["a b"], "ner_tags": [["O", "O"]]}, {}, "not lists of words"),
        ({"tokens": [["a"]], "ner_tags": [["O"]]}, {"text_pair_column": "x"}, "takes no text_pair_column"),
        ({"tokens": [["a"]], "ner_tags": [["O"]]}, {"task": "regression", "tags_column": "ner_tags"}, "for token classification"),
        ({"tokens": [["a"]], "tags": [["O"]]}, {}, "has no column 'ner_tags'.*Pass tags_column="),
    ],
)  # fmt: skip
def test_load_data_refuses_bad_token_data(rows, kwargs, match):
    kwargs = {"task": "token-classification", "eval_split": None, **kwargs}
    with pytest.raises(ValueError, match=match):
        load_data(datasets.Dataset.from_dict(rows), **kwargs)


def test_a_tag_only_the_eval_split_has_is_an_error():
    splits = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"tokens": [["ada", "met"]], "ner_tags": [["B-PER", "O"]]}),
            "test": datasets.Dataset.from_dict({"tokens": [["in", "paris"]], "ner_tags": [["O", "B-LOC"]]}),
        }
    )
    with pytest.raises(ValueError, match=r"split 'test'.*row 0 has tag 'B-LOC', not one of the 2 tags"):
        load_data(splits, task="token-classification")


def test_word_tags_go_to_the_first_sub_word_only(fast_tok):
    ds = datasets.Dataset.from_dict(
        {"tokens": [["ada", "loved", "films", "in", "londons"]], "tags": [[1, 0, 0, 0, 3]]}
    )
    out = tokenize_dataset(ds, fast_tok, max_length=32, num_virtual_tokens=N)
    assert out.column_names == ["input_ids", "token_type_ids", "attention_mask", "labels", "length"]
    tokens = fast_tok.convert_ids_to_tokens(out[0]["input_ids"])
    assert tokens == ["[CLS]", "ada", "loved", "film", "##s", "[UNK]", "london", "##s", "[SEP]"]
    assert out[0]["labels"] == [IGNORE_INDEX, 1, 0, 0, IGNORE_INDEX, 0, 3, IGNORE_INDEX, IGNORE_INDEX]
    assert align_tags([None, 0, 1, 1, None], [3, 5]) == [-100, 3, 5, -100, -100]
    assert first_subwords([None, 0, 0, 2, None]) == [(1, 0), (3, 2)]  # word 1 gave no token


def test_truncation_leaves_room_for_the_prompt_and_reports_lost_words(fast_tok, caplog):
    ds = datasets.Dataset.from_dict(
        {"tokens": [["ada", "loved", "films", "in", "londons"]], "tags": [[1, 0, 0, 0, 3]]}
    )
    with caplog.at_level(logging.WARNING, logger="softprompt.data.words"):
        out = tokenize_dataset(ds, fast_tok, max_length=6 + N, num_virtual_tokens=N)
    assert out[0]["length"] == 6 and fast_tok.convert_ids_to_tokens(out[0]["input_ids"])[-1] == "[SEP]"
    assert out[0]["labels"] == [IGNORE_INDEX, 1, 0, 0, IGNORE_INDEX, IGNORE_INDEX]  # "in", "londons" cut
    assert "2 words in 1 of 1 rows do not fit the 6 tokens" in caplog.text


def test_collator_pads_token_labels_with_ignore_index(fast_tok):
    features = [
        {"input_ids": [CLS_ID, 20, SEP_ID], "attention_mask": [1, 1, 1], "labels": [-100, 1, -100]},
        {
            "input_ids": [CLS_ID, 20, 21, 22, SEP_ID],
            "attention_mask": [1] * 5,
            "labels": [-100, 1, 2, 0, -100],
        },
    ]
    batch = family_for(Task("token-classification")).collator(fast_tok)(features)
    assert batch["labels"].tolist() == [[-100, 1, -100, -100, -100], [-100, 1, 2, 0, -100]]
    assert batch["input_ids"][0].tolist() == [CLS_ID, 20, SEP_ID, 0, 0]
    assert batch["attention_mask"][0].tolist() == [1, 1, 1, 0, 0]
    assert type(family_for(Task()).collator(fast_tok)).__name__ == "DataCollatorWithPadding"


def test_token_label_check_names_the_misfit():
    ds = datasets.Dataset.from_dict({"input_ids": [[2, 9, 3]], "labels": [[-100, 7, -100]]})
    with pytest.raises(ValueError, match=r"tag ids 7..7 but the model has num_labels=5"):
        check_token_labels(ds, "train_dataset", 5)
    with pytest.raises(ValueError, match="row 0 has 2 labels for 3 tokens"):
        check_token_labels(ds.map(lambda r: {"labels": [-100, 1]}), "train_dataset", 5)
    with pytest.raises(ValueError, match="one list of integer labels per row"):
        check_token_labels(datasets.Dataset.from_dict({"input_ids": [[2, 3]], "labels": [1]}), "x", 5)


# ---------------------------------------------------------------- the wrapper's logits


def test_token_logits_equal_the_bare_model_with_the_prompt_spliced_in(fast_tok):
    model = _token_model()
    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=N), tokenizer=fast_tok)
    assert wrapper.task == Task("token-classification") and wrapper.config.id2label == dict(enumerate(TAGS))
    batch = dict(fast_tok(["ada loved films", "bob"], return_tensors="pt", padding=True))
    labels = torch.tensor([[-100, 1, 0, 0, -100, -100], [-100, 1, -100, -100, -100, -100]])
    out = wrapper(**batch, labels=labels)
    ref = after_cls_reference(model, wrapper.prompts["default"].prompt, batch).logits  # (B, T + N, C)
    trimmed = torch.cat([ref[:, :1], ref[:, 1 + N :]], dim=1)  # the virtual positions dropped
    assert torch.equal(out.logits, trimmed)
    expected = torch.nn.functional.cross_entropy(trimmed.reshape(-1, len(TAGS)), labels.reshape(-1))
    assert torch.allclose(out.loss, expected)


# ---------------------------------------------------------------- metrics


REFS = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-LOC", "I-LOC", "O", "B-PER"], ["I-PER", "O"]]
PREDS = [
    ["B-PER", "I-LOC", "O", "B-LOC"],
    ["O", "B-LOC", "I-LOC", "O", "O"],
    ["B-PER", "O"],
]  # a B-/I- mismatch


def test_seqeval_metric_equals_seqeval_called_directly():
    want = {
        "precision": seqeval.metrics.precision_score(REFS, PREDS),
        "recall": seqeval.metrics.recall_score(REFS, PREDS),
        "f1": seqeval.metrics.f1_score(REFS, PREDS),
        "accuracy": seqeval.metrics.accuracy_score(REFS, PREDS),
    }
    assert load_metric("seqeval").compute(predictions=PREDS, references=REFS) == pytest.approx(
        want, abs=1e-12
    )
    strict = load_metric("seqeval").compute(predictions=PREDS, references=REFS, mode="strict", scheme="IOB2")
    assert strict["f1"] == pytest.approx(
        seqeval.metrics.f1_score(REFS, PREDS, mode="strict", scheme=seqeval.scheme.IOB2), abs=1e-12
    )
    assert want["f1"] != strict["f1"]  # the stray I-PER opens an entity only in the lenient reading

    # the same tags as token logits and labels, with -100 at special tokens, later sub-words and padding
    index = {t: i for i, t in enumerate(TAGS)}
    width = 2 + max(2 * len(r) for r in REFS)
    logits = np.full((len(REFS), width, len(TAGS)), -100.0, dtype=np.float32)  # Trainer pads logits with -100
    labels = np.full((len(REFS), width), IGNORE_INDEX)
    for row, (ref, pred) in enumerate(zip(REFS, PREDS)):
        for k, (r, p) in enumerate(zip(ref, pred)):
            pos = 1 + 2 * k  # every word has a second sub-word at pos + 1, labelled -100
            labels[row, pos] = index[r]
            logits[row, pos] = 0.0
            logits[row, pos, index[p]] = 3.0
            logits[row, pos + 1] = np.arange(len(TAGS))  # an unscored sub-word predicting I-LOC
    got = compute_task_metrics(Task("token-classification"), logits, labels, id2label=dict(enumerate(TAGS)))
    assert got == pytest.approx(want, abs=1e-12)
    compute = build_compute_metrics(task=Task("token-classification"), id2label=dict(enumerate(TAGS)))
    assert compute(EvalPrediction(predictions=logits, label_ids=labels)) == pytest.approx(want, abs=1e-12)
    with pytest.raises(ValueError, match="needs its tag names"):
        build_compute_metrics(task=Task("token-classification"))
    with pytest.raises(ValueError, match=r"\['LABEL_0', 'LABEL_1'\] are not tags"):
        build_compute_metrics(task=Task("token-classification"), id2label={0: "LABEL_0", 1: "LABEL_1"})
    with pytest.raises(ValueError, match="seqeval scores tag sequences"):
        build_compute_metrics(("accuracy", "seqeval"))


# ---------------------------------------------------------------- entities


def test_entities_group_words_as_the_pipeline_does():
    text = "Ada  Lovelace met Bob, in New York"
    spans = [(0, 3), (5, 13), (14, 17), (18, 22), (23, 25), (26, 29), (30, 34)]
    tags = ["B-PER", "I-PER", "O", "B-PER", "O", "B-LOC", "I-PER"]  # the last: a type switch opens an entity
    got = group_entities(text, spans, tags, [0.9, 0.5, 0.99, 0.8, 0.9, 0.6, 0.4])
    assert got == [
        Entity("PER", 0, 13, "Ada  Lovelace", pytest.approx(0.7)),
        Entity("PER", 18, 22, "Bob,", 0.8),  # punctuation stays with its word
        Entity("LOC", 26, 29, "New", 0.6),
        Entity("PER", 30, 34, "York", 0.4),
    ]
    assert [e.text for e in group_entities(text, spans, ["B-LOC", "B-LOC", None, "I-LOC", "I-LOC", None, None],
                                           [1.0] * 7)] == ["Ada", "Lovelace", "Bob, in"]  # fmt: skip
    assert got[0].to_dict()["entity_type"] == "PER"


def test_predict_returns_spans_with_character_offsets(fast_tok):
    model = _token_model()
    with (
        torch.no_grad()
    ):  # a head that ignores the text: every word is I-PER with probability e^4 / (e^4 + 4)
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 0.0, 4.0, 0.0, 0.0]))
    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=N), tokenizer=fast_tok)
    score = float(torch.softmax(torch.tensor([0.0, 0.0, 4.0, 0.0, 0.0]), 0)[2])
    text = "  ada  loved films,\tin londons "
    (entities,) = wrapper.predict([text])
    assert entities == [Entity("PER", 2, 30, "ada  loved films,\tin londons", pytest.approx(score, abs=1e-6))]
    model.classifier.bias.data = torch.tensor([0.0, 4.0, 0.0, 0.0, 0.0])  # every word B-PER: one entity each
    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=N), tokenizer=fast_tok)
    (entities, words, empty) = wrapper.predict([text, ["new", "york"], ""])
    assert [(e.start, e.end, e.text) for e in entities] == [
        (2, 5, "ada"), (7, 12, "loved"), (13, 19, "films,"), (20, 22, "in"), (23, 30, "londons")
    ]  # fmt: skip
    assert [(e.start, e.end, e.text) for e in words] == [(0, 3, "new"), (4, 8, "york")] and empty == []
    assert predict(wrapper, fast_tok, [text])[0] == entities  # the same through softprompt.predict
    with pytest.raises(TypeError, match=r"texts\[0\] is int"):
        wrapper.predict([3])
    with pytest.raises(ValueError, match="one row of logits per token, not per text"):
        predict_logits(wrapper, fast_tok, [text])
    with pytest.raises(
        ValueError, match="single-label classification; this model has a token-classification head"
    ):
        wrapper.calibrate([text], [1])
    with pytest.raises(ValueError, match="only single-label classification prompts can be ensembled"):
        wrapper.predict([text], prompts=["default"])


def test_slow_tokenizers_and_unnamed_tags_are_refused(fast_tok):
    slow = transformers.ByT5Tokenizer()
    assert not slow.is_fast
    ds = datasets.Dataset.from_dict({"tokens": [["ada"]], "tags": [[1]]})
    with pytest.raises(ValueError, match="needs a fast tokenizer.*ByT5Tokenizer"):
        tokenize_dataset(ds, slow, max_length=16)
    config = SoftPromptConfig(num_virtual_tokens=N, placement="prepend")  # ByT5 has no [CLS]
    wrapper = SoftPromptWrapper(_token_model(), config, tokenizer=slow)
    with pytest.raises(ValueError, match="needs a fast tokenizer"):
        wrapper.predict(["ada met bob"])
    unnamed = SoftPromptWrapper(_token_model(names=["LABEL_0", "LABEL_1"]), tokenizer=fast_tok)
    with pytest.raises(ValueError, match="are not tags like"):
        unnamed.predict(["ada met bob"])


# ---------------------------------------------------------------- training, files, pipelines


@pytest.fixture(scope="module")
def trained(fast_tok, tmp_path_factory):
    """A prompt trained a few epochs on the toy tags; the loss on the training set before and after."""
    torch.manual_seed(0)
    data = _data()
    wrapper = SoftPromptWrapper(_token_model(), SoftPromptConfig(num_virtual_tokens=N), tokenizer=fast_tok)
    train = tokenize_dataset(data.train, fast_tok, max_length=32, num_virtual_tokens=N)
    test = tokenize_dataset(data.eval, fast_tok, max_length=32, num_virtual_tokens=N)
    collate = family_for(wrapper.task).collator(fast_tok)
    batch = collate([{k: train[i][k] for k in ("input_ids", "token_type_ids", "attention_mask", "labels")}
                     for i in range(len(train))])  # fmt: skip

    def loss() -> float:
        with torch.no_grad():
            return float(wrapper(**batch).loss)

    before = loss()
    result = train_prompt(
        wrapper, train, test, output_dir=tmp_path_factory.mktemp("pt"), num_train_epochs=6, learning_rate=0.1,
        per_device_train_batch_size=8, disable_tqdm=True, logging_strategy="epoch", warmup_steps=0,
    )  # fmt: skip
    return {"data": data, "wrapper": wrapper, "result": result, "before": before, "after": loss()}


def test_train_prompt_lowers_the_loss_and_scores_entities(trained, fast_tok):
    result, data, wrapper = trained["result"], trained["data"], trained["wrapper"]
    assert trained["after"] < 0.8 * trained["before"]
    assert {f"eval_{m}" for m in Task("token-classification").metric_names} <= set(result.eval_metrics)
    assert result.best_checkpoint is not None  # kept by eval_f1
    scores = evaluate_model(wrapper, fast_tok, data.eval, max_length=32)
    for m in ("precision", "recall", "f1", "accuracy"):  # evaluate_model scores as Trainer did
        assert scores[f"eval_{m}"] == pytest.approx(result.eval_metrics[f"eval_{m}"], abs=1e-9)
    assert scores["eval_accuracy"] > 0.5


def test_prompt_file_round_trip_keeps_the_task_and_the_logits(trained, fast_tok):
    wrapper, path = trained["wrapper"], trained["result"].prompt_path
    pf = read_prompt_file(path)
    assert pf.task == Task("token-classification") and pf.id2label == dict(enumerate(TAGS))
    fresh = _token_model(seed=0)
    torch.nn.init.normal_(fresh.classifier.weight)  # another head: the file brings its own
    reloaded = SoftPromptWrapper.from_prompt(fresh, path, tokenizer=fast_tok)
    assert reloaded.task == wrapper.task and reloaded.id2label == wrapper.id2label
    batch = dict(fast_tok(["ada loved films in paris", "bob"], return_tensors="pt", padding=True))
    with torch.no_grad():
        assert torch.equal(reloaded(**batch).logits, wrapper(**batch).logits)
    texts = ["ada bob loved the films in londons", "the plot was boringly good york"]
    assert reloaded.predict(texts) == wrapper.predict(texts)
    seq = transformers.AutoModelForSequenceClassification.from_config(model_config("bert", len(TAGS)))
    with pytest.raises(
        ValueError, match="trained for 'token-classification'.*AutoModelForTokenClassification"
    ):
        SoftPromptWrapper.from_prompt(seq, path, tokenizer=fast_tok)


def test_predict_reads_each_word_at_its_first_sub_word(trained, fast_tok):
    wrapper = trained["wrapper"]
    texts = ["ada bob loved the films in londons", "the plot was boringly good york"]
    for text, entities in zip(texts, wrapper.predict(texts)):
        words = text.split()
        ((index, logits),) = word_logits(wrapper, fast_tok, [words])
        probs = torch.softmax(logits, -1)
        tags = [TAGS[int(i)] for i in probs.argmax(-1)]
        expected = group_entities(text, [(text.index(w), text.index(w) + len(w)) for w in words], tags,
                                  probs.max(-1).values.tolist())  # fmt: skip
        assert index == list(range(len(words))) and entities == expected


def test_pipeline_gives_the_entities_and_scores_of_predict(trained, fast_tok):
    wrapper = trained["wrapper"]
    pipe = transformers.pipeline(
        "token-classification", model=wrapper, tokenizer=fast_tok, aggregation_strategy="first"
    )
    texts = ["ada bob loved the films in londons", "the plot was boringly good york", "paris"]
    found = 0
    for text, mine, theirs in zip(texts, wrapper.predict(texts), pipe(texts)):
        assert [(e["entity_group"], e["start"], e["end"]) for e in theirs] == [
            (e.entity_type, e.start, e.end) for e in mine
        ]
        assert [float(e["score"]) for e in theirs] == pytest.approx([e.score for e in mine], abs=1e-6)
        assert all(e.text == text[e.start : e.end] for e in mine)
        found += len(mine)
    assert found > 0


def test_finetune_shares_the_token_pipeline(fast_tok, tmp_path):
    from softprompt.finetune import finetune, load_finetuned

    data = _data()
    model = _token_model()
    train = tokenize_dataset(data.train, fast_tok, max_length=32)
    test = tokenize_dataset(data.eval, fast_tok, max_length=32)
    result = finetune(
        model, fast_tok, train, test, output_dir=tmp_path / "ft", num_train_epochs=1, per_device_train_batch_size=8,
        learning_rate=1e-3, disable_tqdm=True,
    )  # fmt: skip
    assert "eval_f1" in result.eval_metrics
    assert evaluate_model(model, fast_tok, data.eval, max_length=32)["eval_f1"] == pytest.approx(
        result.eval_metrics["eval_f1"], abs=1e-9
    )
    reloaded, tok = load_finetuned(result.model_dir)
    assert type(reloaded).__name__ == "BertForTokenClassification" and tok.is_fast
    assert predict(reloaded, tok, ["ada loved paris"]) == predict(model, fast_tok, ["ada loved paris"])


@pytest.mark.slow
def test_conll2003_loads_and_aligns():
    if not (CONLL_DIR / "train.parquet").is_file():
        pytest.skip(f"no CoNLL-2003 copy at {CONLL_DIR}; set SOFTPROMPT_CONLL_DIR")
    data = load_data(CONLL_DIR, task="token-classification", train_size=16, eval_size=8)
    assert data.eval_split == "validation" and len(data.label_names) == 9 and data.label_names[0] == "O"
    assert {n[2:] for n in data.label_names[1:]} == {"PER", "ORG", "LOC", "MISC"}
    tok = transformers.BertTokenizer(vocab={t: i for i, t in enumerate(TOKEN_VOCAB)})
    out = tokenize_dataset(data.train, tok, max_length=512, num_virtual_tokens=N)
    for row, tokenized in zip(data.train, out):  # every word kept, its tag on its first sub-word
        assert [t for t in tokenized["labels"] if t != IGNORE_INDEX] == row["tags"]
