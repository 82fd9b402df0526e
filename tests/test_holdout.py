"""``holdout``: evaluation rows carved out of one file, reproducibly and never trained on."""

import pandas as pd
import pytest

from softprompt import load_data


@pytest.fixture
def one_file(tmp_path):
    frame = pd.DataFrame({"review": [f"text number {i}" for i in range(50)],
                          "sentiment": ["positive" if i % 3 else "negative" for i in range(50)]})  # fmt: skip
    path = tmp_path / "reviews.csv"
    frame.to_csv(path, index=False)
    return str(path)


def test_holdout_carves_disjoint_reproducible_rows(one_file):
    kwargs = {"text_column": "review", "label_column": "sentiment", "holdout": 0.2}
    data = load_data(one_file, **kwargs)
    assert (len(data.train), len(data.eval)) == (40, 10)
    assert not set(data.train["text"]) & set(data.eval["text"])
    assert data.eval_split == "train[holdout 0.2]" and data.label_names == ["negative", "positive"]
    # what `softprompt eval` loads: no training rows asked for, the same evaluation rows
    again = load_data(one_file, **kwargs, train_split=None)
    assert again.train is None and again.eval["text"] == data.eval["text"]
    other = load_data(one_file, **kwargs, seed=7)
    assert other.eval["text"] != data.eval["text"]
    sub = load_data(one_file, **kwargs, eval_size=4)  # a subset of the holdout, as for any split
    assert set(sub.eval["text"]) <= set(data.eval["text"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"holdout": 1.5}, "fraction of the rows"),
        ({"holdout": 0}, "fraction of the rows"),
        ({"holdout": True}, "fraction of the rows"),
        ({"holdout": 0.2, "eval_split": "test"}, "drop eval_split"),
        ({"holdout": 0.999}, "holdout=0.999 of split 'train'"),
    ],
)
def test_bad_holdouts_are_refused(one_file, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_data(one_file, text_column="review", label_column="sentiment", **kwargs)
