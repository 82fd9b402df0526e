"""Tests for softprompt.data: every source layout, label naming, subsets, each error, and tokenization."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

import datasets
import pandas as pd
import pytest
import transformers

from softprompt.data import (
    TaskData,
    TextClassificationData,
    load_data,
    load_text_classification,
    tokenize_dataset,
)

WORDS = [
    "the",
    "a",
    "film",
    "movie",
    "great",
    "good",
    "bad",
    "dull",
    "superb",
    "awful",
    "acting",
    "plot",
    "story",
]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
N_TRAIN, N_TEST = 12, 8

IMDB_DIR = Path(
    os.environ.get("SOFTPROMPT_IMDB_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb")
)


@pytest.fixture(autouse=True)
def _datasets_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the Arrow files that load_dataset writes out of the user's ~/.cache."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_datasets_cache")


@pytest.fixture(scope="module")
def tiny_tokenizer() -> transformers.PreTrainedTokenizerBase:
    """In-memory WordPiece tokenizer; model_max_length is left at transformers' huge sentinel."""
    # transformers 5 takes the vocabulary as `vocab=` (a dict or a path); `vocab_file=` is ignored.
    tokenizer = transformers.BertTokenizerFast(vocab={token: i for i, token in enumerate(VOCAB)})
    assert tokenizer.convert_tokens_to_ids("movie") == VOCAB.index("movie")
    return tokenizer


def _frame(n: int, offset: int = 0, num_labels: int = 2) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"r{offset + i}" for i in range(n)],
            "text": [f"review {offset + i}: the movie was {WORDS[i % len(WORDS)]}" for i in range(n)],
            "label": [i % num_labels for i in range(n)],
        }
    )


def _write(df: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        df.to_parquet(path)
    elif path.suffix == ".csv":
        df.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    else:  # .json: one array of records
        path.write_text(json.dumps(df.to_dict(orient="records")))
    return path


def _split_folder(root: Path, suffix: str = ".parquet", **frames: pd.DataFrame) -> Path:
    frames = frames or {"train": _frame(N_TRAIN), "test": _frame(N_TEST, offset=100)}
    for split, df in frames.items():
        _write(df, root / f"{split}{suffix}")
    return root


def _class_folders(root: Path, counts: dict[str, dict[str, int]]) -> Path:
    """<root>/<split>/<class>/<i>_<class>.txt, plus aclImdb's clutter that must be ignored."""
    for split, per_class in counts.items():
        for name, n in per_class.items():
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                (root / split / name / f"{i}_{name}.txt").write_text(f"{name} review {i}", encoding="utf-8")
        (root / split / "urls_pos.txt").write_text("http://example.org\n")  # a file, not a class
        (root / split / "empty_class").mkdir()  # no .txt inside: not a class
    (root / "README").write_text("not data")
    return root


# --- sources -------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl", ".json"])
def test_split_files(tmp_path: Path, suffix: str) -> None:
    root = _split_folder(tmp_path / "data", suffix)
    data = load_data(root)
    assert len(data.train) == N_TRAIN and len(data.eval) == N_TEST
    for ds in (data.train, data.eval):
        assert ds.column_names == ["text", "label"]
        assert ds.features["label"] == datasets.Value("int64")
        assert ds.features["text"] == datasets.Value("string")
    assert data.train["text"] == _frame(N_TRAIN)["text"].tolist()
    assert data.eval["label"] == _frame(N_TEST)["label"].tolist()
    assert data.label_names == ["0", "1"]


def test_path_object_and_custom_split_names(tmp_path: Path) -> None:
    root = _split_folder(tmp_path / "data", ".csv", training=_frame(6), validation=_frame(4), test=_frame(3))
    data = load_data(root, train_split="training", eval_split="validation")
    assert (len(data.train), len(data.eval)) == (6, 4)
    only_eval = load_data(str(root), train_split=None, eval_split="test")
    assert only_eval.train is None and len(only_eval.eval) == 3


def test_single_file_is_the_train_split(tmp_path: Path) -> None:
    path = _write(_frame(N_TRAIN), tmp_path / "reviews.jsonl")
    data = load_data(path, eval_split=None)
    assert len(data.train) == N_TRAIN and data.eval is None
    as_eval = load_data(path, train_split=None, eval_split="train")
    assert len(as_eval.eval) == N_TRAIN
    with pytest.raises(ValueError, match=r"no validation or test split.*\['train'\].*single file"):
        load_data(path)


def test_aclimdb_style_folders(tmp_path: Path) -> None:
    counts = {"train": {"pos": 3, "neg": 4, "unsup": 5}, "test": {"neg": 2, "pos": 2}}
    data = load_data(_class_folders(tmp_path / "aclImdb", counts))
    assert data.label_names == ["neg", "pos"]  # sorted; unsup skipped
    assert data.id2label == {0: "neg", 1: "pos"}
    assert (len(data.train), len(data.eval)) == (7, 4)
    assert data.train.column_names == ["text", "label"]
    assert data.train.features["label"] == datasets.Value("int64")
    for text, label in zip(data.train["text"], data.train["label"]):
        assert text.startswith(data.label_names[label])
    assert data.train["text"][0] == "neg review 0"  # class order, then file name


def test_class_folders_generalise_to_any_classes(tmp_path: Path) -> None:
    counts = {"train": {"sports": 2, "arts": 2, "news": 1}, "test": {"news": 1, "arts": 1}}
    data = load_data(_class_folders(tmp_path / "topics", counts))
    assert data.label_names == ["arts", "news", "sports"]
    assert data.eval["label"] == [0, 1]


def test_renamed_columns_and_extra_columns_dropped(tmp_path: Path) -> None:
    df = _frame(N_TRAIN).rename(columns={"text": "review", "label": "sentiment"})
    df["text"] = "a different column that happens to be called text"
    path = _write(df, tmp_path / "train.parquet")
    data = load_data(path, text_column="review", label_column="sentiment", eval_split=None)
    assert data.train.column_names == ["text", "label"]
    assert data.train["text"] == df["review"].tolist()


def test_hub_dataset_is_loaded_with_load_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    hub = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {"text": ["good", "bad"], "label": [1, 0]}, features=features
            ),
            "test": datasets.Dataset.from_dict({"text": ["fine"], "label": [1]}, features=features),
            "unsupervised": datasets.Dataset.from_dict({"text": ["?"], "label": [-1]}, features=features),
        }
    )
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda name: calls.append(name) or hub)
    data = load_data("stanfordnlp/imdb")
    assert calls == ["stanfordnlp/imdb"]
    assert data.label_names == ["neg", "pos"] and data.train["label"] == [1, 0]
    with pytest.raises(
        ValueError, match=r"split 'validation' not found in Hub dataset.*\['test', 'train', 'unsup"
    ):
        load_data("stanfordnlp/imdb", eval_split="validation")
    with pytest.raises(ValueError, match=r"label -1 at row 0.*GLUE"):
        load_data("stanfordnlp/imdb", eval_split="unsupervised")


def test_hub_failure_suggests_a_local_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Couldn't reach 'imdb' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(
        FileNotFoundError, match=r"could not load 'imdb'.*ConnectionError.*train.parquet"
    ) as err:
        load_data("imdb")
    assert isinstance(err.value.__cause__, ConnectionError)


def test_missing_local_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        load_data(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        load_data("./data/train.parquet")


def test_unsupported_file_and_duplicate_split(tmp_path: Path) -> None:
    (tmp_path / "reviews.txt").write_text("text,label\n")
    with pytest.raises(ValueError, match=r"unsupported suffix '.txt'; use one of \['.csv', '.json'"):
        load_data(tmp_path / "reviews.txt")
    root = _split_folder(tmp_path / "dup", ".csv")
    _write(_frame(3), root / "train.parquet")
    with pytest.raises(ValueError, match=r"split 'train' is given twice.*'train.csv' and 'train.parquet'"):
        load_data(root)


def test_missing_split_lists_available(tmp_path: Path) -> None:
    root = _split_folder(tmp_path / "data", train=_frame(4), validation=_frame(4))
    with pytest.raises(
        ValueError, match=r"split 'test' not found.*available splits: \['train', 'validation'\]"
    ):
        load_data(root, eval_split="test")
    assert load_data(root).eval_split == "validation"  # "auto": validation first, else test
    with pytest.raises(ValueError, match=r"available splits: \[\]"):
        load_data(tmp_path / "data" / ".." / "data" / "..")  # a folder with no split files


# --- subsets -------------------------------------------------------------------------------------


def test_subsets_are_the_textbook_shuffle_select(tmp_path: Path) -> None:
    root = _split_folder(tmp_path / "data")
    data = load_data(root, train_size=5, eval_size=3, seed=7)
    raw_train = datasets.Dataset.from_parquet(str(root / "train.parquet"))
    raw_test = datasets.Dataset.from_parquet(str(root / "test.parquet"))
    assert data.train["text"] == raw_train.shuffle(seed=7).select(range(5))["text"]
    assert data.eval["text"] == raw_test.shuffle(seed=7).select(range(3))["text"]
    assert data.train["label"] == raw_train.shuffle(seed=7).select(range(5))["label"]
    again = load_data(root, train_size=5, eval_size=3, seed=7)
    assert again.train["text"] == data.train["text"]
    other = load_data(root, train_size=5, eval_size=3, seed=8)
    assert other.train["text"] != data.train["text"]
    assert data.train.features["label"] == datasets.Value("int64")


def test_subset_of_class_label_data_is_cast_to_int64(tmp_path: Path) -> None:
    counts = {"train": {"neg": 3, "pos": 3}, "test": {"neg": 1, "pos": 1}}
    data = load_data(_class_folders(tmp_path / "acl", counts), train_size=4, eval_size=2)
    assert data.train.features["label"] == datasets.Value("int64")
    assert sorted(data.eval["label"]) == [0, 1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"train_size": N_TRAIN + 1},
            rf"train_size={N_TRAIN + 1} is larger than split 'train'.*has {N_TRAIN} rows",
        ),
        ({"eval_size": 50}, rf"eval_size=50 is larger than split 'test'.*has {N_TEST} rows"),
        ({"train_size": 0}, r"train_size=0 must be a positive int"),
        ({"eval_size": True}, r"eval_size=True must be a positive int"),
        ({"train_size": 2.5}, r"train_size=2.5 must be a positive int"),
    ],
)
def test_bad_sizes(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_data(_split_folder(tmp_path / "data"), **kwargs)


# --- label names ---------------------------------------------------------------------------------


def test_label_names_from_class_label_feature(tmp_path: Path) -> None:
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["bad", "good"])}
    )
    for split in ("train", "test"):
        ds = datasets.Dataset.from_dict({"text": ["x", "y", "z"], "label": [0, 1, 1]}, features=features)
        ds.to_parquet(str(tmp_path / "data" / f"{split}.parquet"))  # the features travel in the schema
    data = load_data(tmp_path / "data")
    assert data.label_names == ["bad", "good"]
    assert data.train.features["label"] == datasets.Value("int64")
    assert load_data(tmp_path / "data", label_names=["bad", "good"]).label_names == [
        "bad",
        "good",
    ]
    with pytest.raises(ValueError, match=r"label_names=\['neg', 'pos'\] disagrees.*\['bad', 'good'\]"):
        load_data(tmp_path / "data", label_names=["neg", "pos"])


def test_splits_with_different_class_labels(tmp_path: Path) -> None:
    for split, names in (("train", ["a", "b"]), ("test", ["b", "a"])):
        features = datasets.Features(
            {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)}
        )
        ds = datasets.Dataset.from_dict({"text": ["x"], "label": [0]}, features=features)
        ds.to_parquet(str(tmp_path / "data" / f"{split}.parquet"))
    with pytest.raises(ValueError, match="disagree on their class names"):
        load_data(tmp_path / "data")


def test_label_names_argument_guess_and_numeric_fallback(tmp_path: Path) -> None:
    root = _split_folder(tmp_path / "data")
    data = load_data(root, label_names=("negative", "positive"))
    assert data.label_names == ["negative", "positive"]
    assert data.label2id == {"negative": 0, "positive": 1} and data.num_labels == 2
    imdb = _split_folder(tmp_path / "imdb")
    assert load_data(imdb).label_names == ["0", "1"]  # no guessing from a folder's name: pass label_names=
    three = _split_folder(tmp_path / "three", train=_frame(6, num_labels=3), test=_frame(3, num_labels=3))
    assert load_data(three).label_names == ["0", "1", "2"]
    with pytest.raises(ValueError, match=r"label_names='neg' is one string"):
        load_data(root, label_names="neg")


def test_single_class_is_an_error(tmp_path: Path) -> None:
    root = _split_folder(tmp_path / "data", train=_frame(4, num_labels=1))
    with pytest.raises(ValueError, match=r"needs at least 2 classes, got \['0'\]"):
        load_data(root, eval_split=None)
    assert load_data(root, eval_split=None, label_names=["a", "b"]).label_names == ["a", "b"]


def test_text_classification_data() -> None:
    data = TextClassificationData(train=None, eval=None, label_names=["neg", "pos"])
    assert (data.id2label, data.label2id, data.num_labels) == ({0: "neg", 1: "pos"}, {"neg": 0, "pos": 1}, 2)
    renamed = dataclasses.replace(data, label_names=["negative", "positive"])
    assert renamed.id2label == {0: "negative", 1: "positive"}
    with pytest.raises(ValueError, match="needs at least 2 classes"):
        TextClassificationData(train=None, eval=None, label_names=[])
    with pytest.raises(ValueError, match=r"repeats a name"):
        TextClassificationData(train=None, eval=None, label_names=["a", "b", "a"])


# --- validation ----------------------------------------------------------------------------------


def _one_split(tmp_path: Path, df: pd.DataFrame, suffix: str = ".parquet") -> Path:
    return _write(df, tmp_path / "data" / f"train{suffix}").parent


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"text_column": "review"},
            r"no column 'review'; its columns are \['id', 'text', 'label'\]. Pass text_column=",
        ),
        (
            {"label_column": "stars"},
            r"no column 'stars'; its columns are \['id', 'text', 'label'\]. Pass label_column=",
        ),
        ({"text_column": "label"}, r"must be different columns, got \['label', 'label'\]"),
        ({"train_split": None}, r"train_split and eval_split are both None"),
        ({"eval_split": "train"}, r"train_split and eval_split are both 'train'"),
    ],
)
def test_bad_columns_and_splits(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_data(_one_split(tmp_path, _frame(4)), **{"eval_split": None, **kwargs})


@pytest.mark.parametrize(
    ("labels", "suffix", "message"),
    [
        (
            ["pos", "neg", "pos", "neg"],
            ".csv",
            r"has label 'pos' at row 0, which is not one of the classes \['a', 'b'\]",
        ),
        ([0.0, 1.0, 0.5, 1.0], ".parquet", r"non-integer label 0.5 at row 2.*task='regression'"),
        ([0.0, float("nan"), 1.0, 1.0], ".parquet", r"missing label \(None\) at row 1"),
        ([True, False, True, False], ".parquet", r"has label True \(type bool\) at row 0"),
        ([0, 1, None, 1], ".jsonl", r"missing label \(None\) at row 2"),
        ([0, 1, 2, 1], ".parquet", r"label 2 at row 2, outside \[0, 2\) for the 2 classes \['a', 'b'\]"),
        ([0, -1, 1, 1], ".parquet", r"label -1 at row 1, outside \[0, 2\).*GLUE test splits"),
    ],
)
def test_bad_labels(tmp_path: Path, labels: list, suffix: str, message: str) -> None:
    df = _frame(4)
    df["label"] = pd.Series(labels, dtype=object if None in labels else None)
    root = _one_split(tmp_path, df, suffix)
    with pytest.raises(ValueError, match=message):
        load_data(root, eval_split=None, label_names=["a", "b"], task="classification")


def test_negative_label_without_label_names(tmp_path: Path) -> None:
    df = _frame(4)
    df.loc[3, "label"] = -1
    with pytest.raises(ValueError, match=r"class ids \[-1, 0, 1\], not 0..K-1.*label -1 at row 3"):
        load_data(_one_split(tmp_path, df), eval_split=None)


def test_integral_float_labels_are_accepted(tmp_path: Path) -> None:
    df = _frame(4)
    df["label"] = df["label"].astype(float)
    data = load_data(_one_split(tmp_path, df), eval_split=None)
    assert data.train["label"] == [0, 1, 0, 1]
    assert data.train.features["label"] == datasets.Value("int64")


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_empty_split(tmp_path: Path, suffix: str) -> None:
    root = _split_folder(tmp_path / "data", suffix, train=_frame(4), test=_frame(0))
    with pytest.raises(ValueError, match=r"split 'test' of .* is empty"):
        load_data(root)


def test_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text('{"text": "fine", "label": 0}\n{not json\n')
    with pytest.raises(ValueError, match=r"could not read split 'train' from '.*train.jsonl'"):
        load_data(tmp_path / "data", eval_split=None)


def test_bad_texts(tmp_path: Path) -> None:
    df = _frame(4)
    df["text"] = [1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"column 'text' holds int64, not text"):
        load_data(_one_split(tmp_path, df), eval_split=None)
    df["text"] = ["a", None, "c", "d"]
    with pytest.raises(ValueError, match=r"missing text at row 1"):
        load_data(_one_split(tmp_path / "2", df), eval_split=None)


# --- tokenize_dataset ----------------------------------------------------------------------------


@pytest.fixture
def reviews() -> datasets.Dataset:
    texts = ["the movie was great", "bad", " ".join(["dull"] * 40), "superb acting , the plot was awful"]
    return datasets.Dataset.from_dict({"text": texts, "label": [1, 0, 0, 1]})


def test_tokenize_dataset_columns_and_no_padding(reviews: datasets.Dataset, tiny_tokenizer) -> None:
    out = tokenize_dataset(reviews, tiny_tokenizer)
    assert out.column_names == ["labels", "input_ids", "token_type_ids", "attention_mask", "length"]
    assert out["labels"] == [1, 0, 0, 1]
    assert out["input_ids"][0] == tiny_tokenizer("the movie was great")["input_ids"]
    assert out["length"] == [len(ids) for ids in out["input_ids"]]
    assert len(set(out["length"])) > 1  # not padded to a common length
    assert all(set(mask) == {1} for mask in out["attention_mask"])


def test_tokenize_dataset_leaves_room_for_virtual_tokens(reviews: datasets.Dataset, tiny_tokenizer) -> None:
    out = tokenize_dataset(reviews, tiny_tokenizer, max_length=10, num_virtual_tokens=4)
    assert max(out["length"]) == 6  # the 40-word text is cut to 10 - 4 tokens
    long = out["input_ids"][2]
    assert long[0] == tiny_tokenizer.cls_token_id and long[-1] == tiny_tokenizer.sep_token_id


def test_tokenize_dataset_default_max_length(tiny_tokenizer) -> None:
    long = datasets.Dataset.from_dict({"text": [" ".join(["good"] * 600)], "label": [1]})
    assert tokenize_dataset(long, tiny_tokenizer)["length"] == [512]  # sentinel model_max_length -> 512
    assert tokenize_dataset(long, tiny_tokenizer, num_virtual_tokens=20)["length"] == [492]
    short_model = transformers.BertTokenizerFast(
        vocab={t: i for i, t in enumerate(VOCAB)}, model_max_length=64
    )
    assert tokenize_dataset(long, short_model)["length"] == [64]


def test_tokenize_dataset_custom_column_and_unlabelled(tiny_tokenizer) -> None:
    ds = datasets.Dataset.from_dict({"review": ["great film", "bad plot"], "id": ["a", "b"]})
    out = tokenize_dataset(ds, tiny_tokenizer, text_column="review")
    assert "review" not in out.column_names and "labels" not in out.column_names
    assert out["id"] == ["a", "b"]


def test_tokenize_dataset_warns_past_model_max_length(reviews: datasets.Dataset, caplog) -> None:
    tokenizer = transformers.BertTokenizerFast(vocab={t: i for i, t in enumerate(VOCAB)}, model_max_length=8)
    with caplog.at_level(logging.WARNING, logger="softprompt.data"):
        tokenize_dataset(reviews, tokenizer, max_length=16)
    assert "max_length=16 exceeds the tokenizer's model_max_length=8" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"max_length": 21, "num_virtual_tokens": 20},
            ValueError,
            r"leaves 1 tokens.*\[CLS\] and \[SEP\] alone need 2",
        ),
        (
            {"max_length": 8, "num_virtual_tokens": -1},
            ValueError,
            r"num_virtual_tokens=-1 must be an int >= 0",
        ),
        ({"max_length": 8.0}, ValueError, r"max_length=8.0 must be an int"),
        ({"text_column": "review"}, ValueError, r"no column 'review'; its columns are \['text', 'label'\]"),
    ],
)
def test_tokenize_dataset_errors(reviews, tiny_tokenizer, kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        tokenize_dataset(reviews, tiny_tokenizer, **kwargs)


def test_tokenize_dataset_needs_one_split(reviews: datasets.Dataset, tiny_tokenizer) -> None:
    with pytest.raises(TypeError, match=r"got DatasetDict; pass a split such as data\.train"):
        tokenize_dataset(datasets.DatasetDict({"train": reviews}), tiny_tokenizer)


# --- real data -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_imdb_subset(tiny_tokenizer) -> None:
    if not (IMDB_DIR / "train.parquet").is_file():
        pytest.skip(f"no IMDb copy at {IMDB_DIR}; set SOFTPROMPT_IMDB_DIR")
    data = load_data(IMDB_DIR, train_size=50, eval_size=20, label_names=["neg", "pos"])
    assert data.label_names == ["neg", "pos"] and data.eval_split == "test"
    assert (len(data.train), len(data.eval)) == (50, 20)
    raw = datasets.load_dataset(
        "parquet", data_files={"train": str(IMDB_DIR / "train.parquet")}, split="train"
    )
    assert data.train["text"] == raw.shuffle(seed=42).select(range(50))["text"]
    assert set(data.train["label"]) == {0, 1}
    tokenized = tokenize_dataset(data.eval, tiny_tokenizer, max_length=128, num_virtual_tokens=20)
    assert max(tokenized["length"]) <= 108


def test_old_name_warns_and_loads(tmp_path: Path) -> None:
    root = _split_folder(tmp_path / "data")
    with pytest.warns(DeprecationWarning, match="renamed load_data"):
        data = load_text_classification(root)
    assert isinstance(data, TaskData) and TextClassificationData is TaskData
