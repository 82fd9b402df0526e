"""Prompt initialisation: random, vocab, text, labels; seeded and in the embedding space."""

import pytest
import torch

from softprompt import SoftPromptConfig, SoftPromptWrapper
from softprompt.models.init import initial_prompt, vocab_pool
from tests.conftest import CLS_ID, EMBED, HIDDEN, PAD_ID, SEP_ID, VOCAB, make_model

SPECIAL = {PAD_ID, CLS_ID, SEP_ID, 1, 4}


def _weight(rows: int = len(VOCAB), dim: int = HIDDEN) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return 0.05 * torch.randn(rows, dim, generator=g) + 0.3


def test_random_matches_embedding_statistics_not_unit_normal():
    w = _weight(2000, 16)
    p = initial_prompt(SoftPromptConfig(num_virtual_tokens=500, init="random"), w)
    assert p.shape == (500, 16)
    assert torch.allclose(p.mean(0), w.mean(0), atol=0.02)
    assert torch.allclose(p.std(0), w.std(0), rtol=0.2)


@pytest.mark.parametrize("init", ["random", "vocab", "text", "labels"])
def test_seeded_and_reproducible(tokenizer, init):
    cfg = SoftPromptConfig(
        num_virtual_tokens=6, init=init, init_text="great film", label_words=["bad", "good"]
    )
    w = _weight()
    a = initial_prompt(cfg, w, tokenizer=tokenizer, special_ids=SPECIAL)
    b = initial_prompt(cfg, w, tokenizer=tokenizer, special_ids=SPECIAL)
    assert torch.equal(a, b)
    if init in ("random", "vocab"):
        other = initial_prompt(
            SoftPromptConfig(num_virtual_tokens=6, init=init, seed=7), w, tokenizer=tokenizer
        )
        assert not torch.equal(a, other)


def test_vocab_rows_are_ordinary_tokens(tokenizer):
    w = _weight()
    p = initial_prompt(
        SoftPromptConfig(num_virtual_tokens=30, init="vocab"), w, tokenizer=tokenizer, special_ids=SPECIAL
    )
    for row in p:
        matches = (w == row).all(1).nonzero().flatten().tolist()
        assert matches, "every vocab-initialised vector is a row of the embedding matrix"
        assert not SPECIAL.intersection(matches)
        assert not any(VOCAB[i].startswith("[unused") for i in matches)


def test_vocab_pool_respects_sample_size(tokenizer):
    pool = vocab_pool(len(VOCAB), 5, special_ids=SPECIAL, tokenizer=tokenizer).tolist()
    assert pool == [8, 9, 10, 11, 12]  # after 5 specials and 3 [unused] slots


def test_text_is_tiled_and_cut(tokenizer):
    w = _weight()
    ids = tokenizer("great film", add_special_tokens=False)["input_ids"]
    p = initial_prompt(
        SoftPromptConfig(num_virtual_tokens=5, init="text", init_text="great film"), w, tokenizer=tokenizer
    )
    assert torch.equal(p, w[torch.tensor([ids[0], ids[1], ids[0], ids[1], ids[0]])])
    short = initial_prompt(
        SoftPromptConfig(num_virtual_tokens=1, init="text", init_text="great film"), w, tokenizer=tokenizer
    )
    assert torch.equal(short, w[ids[:1]])


def test_labels_use_label_words_then_vocab(tokenizer):
    w = _weight()
    cfg = SoftPromptConfig(num_virtual_tokens=4, init="labels", label_words=["negative", "positive"])
    p = initial_prompt(cfg, w, tokenizer=tokenizer, special_ids=SPECIAL)
    assert torch.equal(p[0], w[VOCAB.index("negative")])
    assert torch.equal(p[1], w[VOCAB.index("positive")])
    assert all((w == row).all(1).any() for row in p[2:])


def test_labels_from_id2label_and_placeholder_warning(tokenizer):
    w = _weight()
    cfg = SoftPromptConfig(num_virtual_tokens=3, init="labels")
    p = initial_prompt(cfg, w, tokenizer=tokenizer, id2label={0: "bad", 1: "good"})
    assert torch.equal(p[:2], w[[VOCAB.index("bad"), VOCAB.index("good")]])
    with pytest.warns(UserWarning, match="placeholders"):
        initial_prompt(cfg, w, tokenizer=tokenizer, id2label={0: "LABEL_0", 1: "LABEL_1"})


def test_text_and_labels_need_a_tokenizer():
    with pytest.raises(ValueError, match="needs a tokenizer"):
        initial_prompt(SoftPromptConfig(init="text", init_text="hi"), _weight())
    with pytest.raises(ValueError, match="needs a tokenizer"):
        initial_prompt(SoftPromptConfig(init="labels", label_words=["a", "b"]), _weight())


def test_words_that_tokenize_to_nothing(tokenizer):
    with pytest.raises(ValueError, match="tokenizes to no tokens"):
        initial_prompt(SoftPromptConfig(init="text", init_text="\x00"), _weight(), tokenizer=tokenizer)
    with pytest.raises(ValueError, match="tokenizes to no tokens"):
        initial_prompt(
            SoftPromptConfig(init="labels", label_words=["\x00", "good"]), _weight(), tokenizer=tokenizer
        )


@pytest.mark.parametrize("arch", ["albert", "electra"])
def test_prompt_lives_in_embedding_space(tokenizer, arch):
    wrapper = SoftPromptWrapper(make_model(arch), SoftPromptConfig(num_virtual_tokens=3), tokenizer=tokenizer)
    assert wrapper.prompts["default"].prompt.shape == (3, EMBED)
