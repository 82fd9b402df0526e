"""``ScaledLinear``: ``nn.Linear``'s function, with an Adam step that moves its output ~lr, not ~lr x fan_in."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from softprompt.models.scaled_linear import ScaledLinear

FAN_IN, OUT = 256, 48


def _adam_step_output_change(layer: nn.Module, x: torch.Tensor, lr: float) -> float:
    """Mean |change| of the layer's output after one AdamW step on a loss that pulls every output up."""
    before = layer(x).detach()
    optimizer = torch.optim.AdamW(layer.parameters(), lr=lr, weight_decay=0.0)
    layer(x).sum().backward()
    optimizer.step()
    return (layer(x).detach() - before).abs().mean().item()


def test_computes_a_linear_map_with_nn_linears_initial_bounds():
    layer = ScaledLinear(FAN_IN, OUT, generator=torch.Generator().manual_seed(0))
    x = torch.randn(5, FAN_IN)
    weight = layer.scaled_weight / FAN_IN  # the effective weight, (OUT, FAN_IN)
    torch.testing.assert_close(layer(x), F.linear(x, weight, layer.bias))
    bound = FAN_IN**-0.5
    assert weight.abs().max() <= bound and layer.bias.abs().max() <= bound
    assert weight.std() > 0.5 * bound / 3**0.5  # uniform over the whole range, not a sliver of it
    again = ScaledLinear(FAN_IN, OUT, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.scaled_weight, layer.scaled_weight)  # the generator decides


@pytest.mark.parametrize("lr", [1e-2, 1e-3])
def test_an_adam_step_moves_the_output_like_a_plain_vector_not_fan_in_times_further(lr):
    x = torch.rand(4, FAN_IN)  # positive inputs: the gradient's signs line up, the worst case for nn.Linear
    scaled = _adam_step_output_change(
        ScaledLinear(FAN_IN, OUT, generator=torch.Generator().manual_seed(0)), x, lr
    )
    torch.manual_seed(0)
    plain = _adam_step_output_change(nn.Linear(FAN_IN, OUT), x, lr)
    # a plain vector moves lr a step; ScaledLinear: lr (bias) + lr x mean(x) (weight) = 1.5 lr here
    assert scaled == pytest.approx(lr * (1 + x.mean().item()), rel=0.05)
    assert plain > 50 * scaled  # nn.Linear: lr x (1 + fan_in x mean(x)), ~85x further here


def test_its_state_does_not_share_names_with_nn_linears():
    # a state saved by the unscaled layout (weight) must not load into this one (scaled_weight) unnoticed
    assert sorted(ScaledLinear(3, 2).state_dict()) == ["bias", "scaled_weight"]
    with pytest.raises(RuntimeError, match="scaled_weight"):
        ScaledLinear(3, 2).load_state_dict(nn.Linear(3, 2).state_dict())
