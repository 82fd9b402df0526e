"""``softprompt.models.modes.eval_mode``: dropout off inside, every module's own mode back outside."""

import pytest
import torch
from torch import nn

from softprompt.models.modes import eval_mode


def _model() -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)))


def _modes(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


def test_a_mixed_model_is_in_eval_mode_inside_and_exactly_as_before_outside():
    model = _model().train()
    model[2].eval()  # a part kept in eval mode while the rest trains
    before = _modes(model)
    x = torch.ones(3, 4)
    with eval_mode(model) as inside:
        assert inside is model and not any(_modes(model))
        assert torch.equal(model(x), model(x))  # dropout off: the same output twice
    assert _modes(model) == before == [True, True, True, False, False, False]


def test_a_model_in_eval_mode_is_not_switched(monkeypatch):
    model = _model().eval()
    calls: list[bool] = []
    monkeypatch.setattr(nn.Module, "train", lambda self, mode=True: calls.append(mode) or self)
    with eval_mode(model):
        pass
    assert calls == [] and not any(_modes(model))


def test_the_modes_come_back_when_the_block_raises():
    model = _model().train()
    model[1].eval()
    before = _modes(model)
    with pytest.raises(RuntimeError, match="boom"), eval_mode(model):
        raise RuntimeError("boom")
    assert _modes(model) == before


def test_overlapping_blocks_share_one_switch_and_the_last_one_out_restores():
    """Two calls on one model (threads predicting at once): the second sees the model in eval mode and must not
    record that as its state; dropout stays off until the last block closes, in whichever order they close."""
    model = _model().train()
    before = _modes(model)
    first, second = eval_mode(model), eval_mode(model)
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first call ends while the second still runs
    assert not any(_modes(model))
    second.__exit__(None, None, None)
    assert _modes(model) == before
    with eval_mode(model):  # and the bookkeeping is clean for the next call
        assert not any(_modes(model))
    assert _modes(model) == before
