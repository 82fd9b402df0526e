"""Residual reparameterisation of prompt vectors (Razdaibiedina et al., "Residual Prompt Tuning", Findings ACL 2023).

During training each prompt vector ``p`` (a row of the ``(N, D)`` prompt) is used as
``p + LayerNorm(W_up · ReLU(W_down · p))``: one bottleneck MLP shared by all N vectors, with a skip
connection. The shared MLP couples the vectors' updates, which the paper found trains small
models better and makes the result less sensitive to the learning rate. After training the
MLP is folded away: a prompt file holds the plain ``(N, D)`` vectors the module gave, so loading,
serving and every export are unchanged.

One difference from the paper's module: the LayerNorm's gain starts at **zero**, so at step 0
the reparameterised prompt equals its initialisation exactly (``init="vocab"``, ``"labels"``,
a transferred prompt...) rather than a vector ~20x larger than a token of BERT's embedding
space (a LayerNorm with gain 1 outputs norm ``sqrt(D)``; BERT's word embeddings have per-dimension std
~0.05). The gain gets a gradient at once, the MLP's weights from the second step (as LoRA's
zero-initialised B).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ResidualMLP"]

RESIDUAL_SEED_OFFSET = 104_729  # the MLP draws from its own stream, not the prompt's


class ResidualMLP(nn.Module):
    """``x + LayerNorm(up(relu(down(x))))`` over the last dim, one MLP shared by every vector.

    Args:
        dim: Width of the vectors (the embedding size for an input prompt, the hidden size for deep ones).
        hidden: Bottleneck width.
        seed: Seeds the MLP's initialisation (PyTorch's default bounds, drawn from this stream).

    Raises:
        ValueError: ``dim`` or ``hidden`` is not a positive int.

    Examples:
        >>> mlp = ResidualMLP(8, 4, seed=0)
        >>> x = torch.randn(3, 8)
        >>> torch.equal(mlp(x), x)  # the gain starts at zero: the identity until trained
        True
    """

    def __init__(self, dim: int, hidden: int, *, seed: int) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("hidden", hidden)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ResidualMLP: {name} must be a positive int, got {value!r}")
        self.down = nn.Linear(dim, hidden)
        self.up = nn.Linear(hidden, dim)
        self.norm = nn.LayerNorm(dim)
        gen = torch.Generator().manual_seed(seed + RESIDUAL_SEED_OFFSET)
        with torch.no_grad():
            for linear in (self.down, self.up):
                bound = linear.in_features**-0.5
                linear.weight.uniform_(-bound, bound, generator=gen)
                linear.bias.uniform_(-bound, bound, generator=gen)
            self.norm.weight.zero_()  # the skip connection alone at step 0: the prompt is its initialisation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reparameterised vectors.

        Args:
            x: ``(..., dim)`` vectors (fp32 master weights).

        Returns:
            ``(..., dim)``: ``x`` plus the normalised MLP branch.

        Examples:
            >>> ResidualMLP(8, 4, seed=0)(torch.zeros(2, 8)).shape
            torch.Size([2, 8])
        """
        return x + self.norm(self.up(torch.relu(self.down(x))))
