"""Every docstring example in the package runs, on tiny models.

Each module's examples run in a temporary folder with ``from_pretrained("bert-base-uncased")`` giving a tiny
BERT and tokenizer (``tests/stand_ins.py``), and with the names a method's example assumes already defined,
as the class's own example builds them: ``model`` (a two-class sequence classifier, ``neg``/``pos``),
``tokenizer`` and ``wrapper`` (a :class:`softprompt.SoftPromptWrapper` with 4 virtual tokens on them), and
``torch``, ``SoftPromptConfig`` and ``SoftPromptWrapper`` imported; a training example's ``data`` (16 labelled
texts, a quarter held out) and ``train_ds``/``test_ds`` (tokenized for 4 virtual tokens, as
``softprompt.train_prompt``'s example builds them). ``Trainer``'s log lines are not printed.
``# doctest: +SKIP`` marks the few that need a real model, GPU or network.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest
import transformers

from tests.stand_ins import patch_hub_names

PACKAGE = Path(__file__).resolve().parents[1] / "softprompt"
# the evaluate metric scripts are loaded by path, not imported as modules
MODULES = sorted(
    ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
    for p in PACKAGE.rglob("*.py")
    if not {"accuracy", "f1", "seqeval"} & set(p.relative_to(PACKAGE).parts[:-1]) and p.name != "__main__.py"
)


def example_names() -> dict[str, object]:
    """What a method's example may use without building it: the class example's ``model``, ``tokenizer``, ``wrapper``."""
    from softprompt import SoftPromptConfig, SoftPromptWrapper

    tokenizer = transformers.AutoTokenizer.from_pretrained("bert-base-uncased")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        "bert-base-uncased", num_labels=2, id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1}
    )
    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=4), tokenizer=tokenizer)
    import pandas as pd
    import torch

    from softprompt import load_data, tokenize_dataset

    frame = pd.DataFrame(
        {"text": ["a great film", "a dull film", "great acting", "dull plot"] * 4, "label": [1, 0] * 8}
    )
    data = load_data(frame, holdout=0.25, label_names=["neg", "pos"])
    train_ds, test_ds = (
        tokenize_dataset(d, tokenizer, max_length=32, num_virtual_tokens=4) for d in (data.train, data.eval)
    )
    names = {"torch": torch, "SoftPromptConfig": SoftPromptConfig, "SoftPromptWrapper": SoftPromptWrapper}
    return {
        **names,
        "model": model,
        "tokenizer": tokenizer,
        "wrapper": wrapper,
        "data": data,
        "train_ds": train_ds,
        "test_ds": test_ds,
    }


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = finder.find(module, name)
    if not tests:
        return
    monkeypatch.chdir(tmp_path)
    patch_hub_names(monkeypatch)
    for callback in (transformers.PrinterCallback, transformers.trainer_callback.ProgressCallback):
        monkeypatch.setattr(
            callback, "on_log", lambda *a, **k: None
        )  # Trainer's log lines are no example output
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        test.globs = {**vars(module), **example_names()}  # each docstring starts from fresh objects
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (output above)"
