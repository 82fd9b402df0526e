"""Every kind of data source and label form ``load_data`` takes, and the errors it gives before training."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pandas as pd
import pytest

from softprompt import load_data

FRAME = pd.DataFrame(
    {
        "premise": [
            "a man sings",
            "a dog runs",
            "two kids play",
            "a woman cooks",
            "nobody is here",
            "it rains",
        ],
        "hypothesis": [
            "someone sings",
            "an animal moves",
            "kids sleep",
            "food is made",
            "a crowd",
            "it is dry",
        ],
        "nli": ["entailment", "entailment", "contradiction", "entailment", "contradiction", "neutral"],
        "score": [4.5, 4.1, 1.2, 3.9, 1.0, 2.25],
        "tags": [["music"], ["animal", "sport"], ["sport"], [], ["music", "animal"], ["animal"]],
    }
)
PAIR = {"text_column": "premise", "text_pair_column": "hypothesis"}


def _check_nli(data) -> None:
    assert data.task.type.value == "classification" and data.is_pair
    assert data.label_names == ["contradiction", "entailment", "neutral"]  # string labels, sorted
    assert data.train.column_names == ["text", "text_pair", "label"]
    assert data.train["label"] == [1, 1, 0, 1, 0, 2]


@pytest.mark.parametrize("kind", ["dataframe", "dataset", "datasetdict"])
def test_in_memory_sources(kind):
    source = {
        "dataframe": FRAME,
        "dataset": datasets.Dataset.from_pandas(FRAME),
        "datasetdict": datasets.DatasetDict({"train": datasets.Dataset.from_pandas(FRAME)}),
    }[kind]
    _check_nli(load_data(source, **PAIR, label_column="nli", eval_split=None))


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json", ".parquet"])
def test_single_files(tmp_path, suffix):
    path = tmp_path / f"sick{suffix}"
    frame = FRAME.drop(columns=["tags"])  # lists do not fit a CSV
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif suffix == ".json":
        path.write_text(json.dumps(frame.to_dict(orient="records")))
    else:
        frame.to_parquet(path)
    _check_nli(load_data(path, **PAIR, label_column="nli", eval_split=None))


def test_folder_with_validation_split_and_subsets(tmp_path):
    for split in ("train", "validation", "test"):
        FRAME.to_parquet(tmp_path / f"{split}.parquet")
    data = load_data(tmp_path, **PAIR, label_column="score", train_size=4, eval_size=3, seed=1)
    assert data.eval_split == "validation" and data.task.type.value == "regression"  # floats with fractions
    assert (len(data.train), len(data.eval)) == (4, 3)
    assert data.train.features["label"] == datasets.Value("float32")
    assert load_data(tmp_path, **PAIR, label_column="score", eval_split="test").eval_split == "test"
    assert data.model_kwargs() == {
        "num_labels": 1,
        "id2label": {0: "value"},
        "label2id": {"value": 0},
        "problem_type": "regression",
    }


def test_hub_name_with_config(monkeypatch):
    calls = []

    def fake_load_dataset(name, config=None):
        calls.append((name, config))
        return datasets.DatasetDict(
            {"train": datasets.Dataset.from_pandas(FRAME), "validation": datasets.Dataset.from_pandas(FRAME)}
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = load_data("glue", config_name="mrpc", **PAIR, label_column="nli")
    assert calls == [("glue", "mrpc")] and data.eval_split == "validation"


def test_multi_label_forms():
    names = load_data(FRAME, label_column="tags", text_column="premise", eval_split=None)
    assert names.task.type.value == "multi-label" and names.label_names == ["animal", "music", "sport"]
    assert names.train["label"][1] == [1.0, 0.0, 1.0] and names.train["label"][3] == [0.0, 0.0, 0.0]
    ids = pd.DataFrame({"text": ["a", "b", "c"], "label": [[0, 2], [1], []]})
    assert load_data(ids, eval_split=None).train["label"] == [[1, 0, 1], [0, 1, 0], [0, 0, 0]]
    vectors = pd.DataFrame({"text": ["a", "b"], "label": [[1.0, 0.0], [1.0, 1.0]]})
    data = load_data(vectors, eval_split=None, label_names=["x", "y"])
    assert data.label_names == ["x", "y"] and data.num_labels == 2
    with pytest.raises(ValueError, match="0/1 vectors must all have 2 entries"):
        load_data(pd.DataFrame({"text": ["a", "b"], "label": [[1.0, 0.0], [0.5, 1.0]]}), eval_split=None)
    with pytest.raises(ValueError, match="row 1 has label 'd', not one of the 2 classes"):
        load_data(
            pd.DataFrame({"text": ["a", "b"], "label": [["x"], ["d"]]}),
            eval_split=None,
            label_names=["x", "y"],
        )


def test_task_can_be_forced_and_is_checked():
    ints = pd.DataFrame({"text": ["a", "b", "c"], "label": [1, 3, 5]})
    data = load_data(ints, task="regression", eval_split=None)
    assert data.train["label"] == [1.0, 3.0, 5.0]
    with pytest.raises(ValueError, match="non-integer label 4.5 at row 0.*task='regression'"):
        load_data(FRAME, text_column="premise", label_column="score", task="classification", eval_split=None)
    with pytest.raises(ValueError, match="regression needs numeric labels"):
        load_data(FRAME, text_column="premise", label_column="nli", task="regression", eval_split=None)


def test_a_stray_label_is_an_error_not_a_new_class():
    binary = pd.DataFrame({"text": list("abcdef"), "label": [0, 1, 0, 1, 7, 0]})
    with pytest.raises(ValueError, match=r"class ids \[0, 1, 7\], not 0..K-1.*label 7 at row 4"):
        load_data(binary, eval_split=None)
    with pytest.raises(ValueError, match=r"label 7 at row 4, outside \[0, 2\)"):
        load_data(binary, eval_split=None, label_names=["neg", "pos"])
    train = datasets.Dataset.from_pandas(pd.DataFrame({"text": list("abcd"), "label": ["x", "y", "x", "y"]}))
    test = datasets.Dataset.from_pandas(pd.DataFrame({"text": list("ab"), "label": ["x", "z"]}))
    with pytest.raises(
        ValueError, match=r"split 'test'.*label 'z' at row 1, which is not one of the classes"
    ):
        load_data(datasets.DatasetDict({"train": train, "test": test}))


def test_bad_sources_and_columns(tmp_path: Path):
    with pytest.raises(TypeError, match="data must be a path, a Hub name"):
        load_data(42)
    with pytest.raises(ValueError, match=r"has no column 'sentence'.*Pass text_column="):
        load_data(FRAME, text_column="sentence", label_column="nli", eval_split=None)
    with pytest.raises(ValueError, match=r"has no column 'b'.*Pass text_pair_column="):
        load_data(FRAME, text_column="premise", text_pair_column="b", label_column="nli", eval_split=None)
    with pytest.raises(ValueError, match="no validation or test split"):
        load_data(FRAME, **PAIR, label_column="nli")
