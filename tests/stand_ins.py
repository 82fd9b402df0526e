"""Tiny local stand-ins for the Hub names the docs and docstring examples use, so they run offline.

``from_pretrained("bert-base-uncased")`` on the ``Auto*`` classes gives a tiny BERT (``num_labels``,
``id2label``, ``label2id`` and ``problem_type`` honoured) and ``AutoTokenizer`` the in-memory tokenizer of
``tests/conftest.py``; any other name goes to the real ``from_pretrained``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import transformers

from tests.conftest import make_tokenizer, model_config

STAND_IN = "bert-base-uncased"
AUTO_CLASSES = (
    transformers.AutoModelForSequenceClassification,
    transformers.AutoModelForTokenClassification,
    transformers.AutoModelForQuestionAnswering,
    transformers.AutoModel,
)


def tiny_tokenizer() -> transformers.PreTrainedTokenizerBase:
    """The in-memory tokenizer, with bert-base-uncased's 512 positions."""
    tok = make_tokenizer()
    tok.model_max_length = 512
    return tok


def tiny_model(auto_cls: Any, **kwargs: Any) -> Any:
    """A tiny BERT of ``auto_cls``'s kind, with the labels ``kwargs`` name, in eval mode, seeded.

    With ``output_loading_info=True``, ``(model, info)`` as transformers returns it: the head is new.
    """
    loading_info = kwargs.pop("output_loading_info", False)
    config = model_config("bert", num_labels=kwargs.pop("num_labels", 2))
    for key in ("id2label", "label2id", "problem_type"):
        if key in kwargs:
            setattr(config, key, kwargs.pop(key))
    config.initializer_range = 0.2
    config.max_position_embeddings = 512  # the docs use max_length=256
    torch.manual_seed(0)
    model = auto_cls.from_config(config).eval()
    if not loading_info:
        return model
    head = [name for name, _ in model.named_parameters() if not name.startswith(model.base_model_prefix)]
    return model, {"missing_keys": head, "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}


def patch_hub_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """``from_pretrained("bert-base-uncased")`` gives the tiny stand-ins for the rest of the test."""

    def loader(auto_cls: Any) -> Any:
        real = auto_cls.from_pretrained

        def load(name: Any, *args: Any, **kwargs: Any) -> Any:
            return tiny_model(auto_cls, **kwargs) if name == STAND_IN else real(name, *args, **kwargs)

        return load

    for cls in AUTO_CLASSES:
        monkeypatch.setattr(cls, "from_pretrained", loader(cls))
    real_tok = transformers.AutoTokenizer.from_pretrained
    monkeypatch.setattr(
        transformers.AutoTokenizer,
        "from_pretrained",
        lambda name, *a, **k: tiny_tokenizer() if name == STAND_IN else real_tok(name, *a, **k),
    )
