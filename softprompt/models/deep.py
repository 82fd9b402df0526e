"""Deep prompts (P-tuning v2, deep VPT): learned vectors at the input of every transformer layer, not only the first.

Layer 0 takes the usual input prompt ``(N, E)`` in embedding space. At the input of each later
layer ``i`` (1..L-1) the hidden states of the N virtual positions are *replaced* by that layer's
learned vectors ``(N, H)``: every layer sees fresh prompt vectors, as in deep VPT, and N real
positions carry them, so masks, positions and output slicing stay what the input prompt set up.

Why this mechanism: the replacement is done by forward pre-hooks on the encoder's layer modules,
found once by a probe forward (the outermost ``nn.ModuleList`` in ``base_model`` whose members
run ``config.num_hidden_layers`` times per forward). It needs no module names and no
``past_key_values``, which most encoders do not take. Counting calls, not modules, gives ALBERT's
single shared layer, called L times, layer ``i``'s vectors on its i-th call. The hooks are
registered once per wrapper and do nothing unless the wrapper's forward has opened
:meth:`DeepPromptHooks.inject`, so the model called on its own is unchanged. transformers 5
checkpoints a layer's ``forward``, not its ``__call__``, so under gradient checkpointing the hooks
still run once and a replayed layer gets the already replaced input.

The vectors start from the probe's per-layer, per-dimension statistics of real hidden states
(as ``init="random"`` uses the embedding matrix's), so a virtual position starts at the scale of
a real token at that depth, where N(0, 0.02) would be ~50x smaller than BERT's LayerNorm'd states.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from softprompt.core.config import SoftPromptConfig
from softprompt.models.modes import eval_mode
from softprompt.models.residual import ResidualMLP
from softprompt.models.scaled_linear import ScaledLinear

__all__ = [
    "DeepPrompt",
    "DeepPromptHooks",
    "LayerStack",
    "find_layer_stack",
    "initial_deep_prompt",
    "model_dims",
]

PROBE_TOKENS = 16  # long enough for per-dimension statistics, short enough to cost nothing
PROBE_SEED = 0  # the probe's token ids: fixed, so the same model always gives the same statistics
DEEP_SEED_OFFSET = 7919  # deep vectors draw from their own stream, not the input prompt's
HIDDEN_KWARGS = ("hidden_states", "x")  # where a layer takes its input when it is not positional


def model_dims(model: nn.Module) -> tuple[int, int]:
    """``(num_hidden_layers, hidden_size)`` from the model's config (DistilBERT's names are mapped by transformers).

    Raises:
        ValueError: the config has neither.
    """
    config = getattr(model, "config", None)
    layers, hidden = getattr(config, "num_hidden_layers", None), getattr(config, "hidden_size", None)
    if not (isinstance(layers, int) and isinstance(hidden, int)):
        raise ValueError(
            f"deep prompts need config.num_hidden_layers and config.hidden_size; {type(model).__name__}'s config "
            f"has {layers!r} and {hidden!r}"
        )
    return layers, hidden


@dataclass
class LayerStack:
    """The encoder's layers as found by the probe, and the statistics of their inputs.

    Attributes:
        path: Name of the ``nn.ModuleList`` in ``base_model`` (``"encoder.layer"``), for messages.
        modules: Its distinct members (one for ALBERT's shared group).
        num_layers: Layer calls per forward (``config.num_hidden_layers``).
        hidden_size: Last dim of the layers' input.
        mean, std: ``(L - 1, H)`` per-dimension statistics of the inputs of layers 1..L-1.
    """

    path: str
    modules: list[nn.Module]
    num_layers: int
    hidden_size: int
    mean: torch.Tensor
    std: torch.Tensor


def _hidden_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str | int, torch.Tensor] | None:
    """Where a layer call's hidden states are: (0, tensor) if positional, (kwarg name, tensor) otherwise."""
    if args and isinstance(args[0], torch.Tensor):
        return 0, args[0]
    for key in HIDDEN_KWARGS:
        if isinstance(kwargs.get(key), torch.Tensor):
            return key, kwargs[key]
    return None


def find_layer_stack(model: nn.Module) -> LayerStack:
    """Find the encoder's layers with one short no-grad forward of ``model.base_model``.

    Every member of every ``nn.ModuleList`` is hooked; the outermost list whose members were
    called ``config.num_hidden_layers`` times in all is the layer stack. The inputs recorded on
    the way give each layer's hidden-state statistics, used to initialise deep prompts.

    Raises:
        ValueError: no such list, or its inputs are not ``(batch, seq, hidden_size)``.

    Examples:
        >>> find_layer_stack(bert).path  # doctest: +SKIP
        'encoder.layer'
    """
    num_layers, hidden = model_dims(model)
    if num_layers < 2:
        raise ValueError(
            f"deep prompts need at least 2 layers (vectors go to layers 1..L-1); {type(model).__name__} has {num_layers}"
        )
    base = getattr(model, "base_model", model)
    lists = [(name, m) for name, m in base.named_modules() if isinstance(m, nn.ModuleList) and len(m)]
    seen: dict[str, list[torch.Tensor | None]] = {name: [] for name, _ in lists}

    def recorder(name: str) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            found = _hidden_of(args, kwargs)
            seen[name].append(found[1].detach().float() if found else None)

        return hook

    handles = [
        child.register_forward_pre_hook(recorder(name), with_kwargs=True) for name, m in lists for child in m
    ]
    weight = model.get_input_embeddings().weight  # (V, E)
    ids = torch.randint(
        weight.shape[0], (1, PROBE_TOKENS), generator=torch.Generator().manual_seed(PROBE_SEED)
    )
    try:
        with eval_mode(base), torch.no_grad():
            base(
                inputs_embeds=weight[ids.to(weight.device)],
                attention_mask=torch.ones_like(ids, device=weight.device),
            )
    finally:
        for handle in handles:
            handle.remove()

    matches = [name for name, _ in lists if len(seen[name]) == num_layers]
    if not matches:
        counts = {name: len(calls) for name, calls in seen.items() if calls}
        raise ValueError(
            f"deep prompts: found no nn.ModuleList in {type(base).__name__} whose layers run "
            f"config.num_hidden_layers={num_layers} times per forward (calls per list: {counts}); "
            "this model's layer stack is not supported, use SoftPromptConfig(deep=False)"
        )
    path = min(matches, key=lambda name: name.count("."))  # outermost: ALBERT's group, not the layers in it
    inputs = seen[path]
    if any(h is None or h.dim() != 3 or h.shape[-1] != hidden for h in inputs):
        shapes = [None if h is None else tuple(h.shape) for h in inputs]
        raise ValueError(
            f"deep prompts: the layers in {type(base).__name__}.{path} take inputs of shapes {shapes}, "
            f"not (batch, seq, hidden_size={hidden})"
        )
    later = torch.stack([h[0] for h in inputs[1:]])  # (L - 1, T, H)
    members = list(dict.fromkeys(dict(lists)[path]))  # distinct modules, in order
    return LayerStack(path, members, num_layers, hidden, later.mean(1), later.std(1))


def initial_deep_prompt(config: SoftPromptConfig, stack: LayerStack) -> torch.Tensor:
    """``(L - 1, N, H)`` fp32 vectors drawn from each layer's own input statistics, seeded by ``config.seed``.

    Like ``init="random"`` for the input prompt: per-dimension mean and std, here of the hidden
    states entering each layer, so a virtual position starts at the scale of a real token there.
    """
    gen = torch.Generator().manual_seed(config.seed + DEEP_SEED_OFFSET)
    n = config.num_virtual_tokens
    noise = torch.randn(stack.num_layers - 1, n, stack.hidden_size, generator=gen)  # (L - 1, N, H)
    return stack.mean.cpu().unsqueeze(1) + stack.std.cpu().unsqueeze(1) * noise


class DeepPrompt(nn.Module):
    """A slot's vectors for layers 1..L-1, as a plain ``(L - 1, N, H)`` parameter or through an MLP.

    With ``reparam_hidden`` the vectors are ``MLP(base)`` with a learned ``(N, H)`` base (P-tuning's
    prompt encoder), its linear layers :class:`~softprompt.models.scaled_linear.ScaledLinear` so that it trains
    at plain vectors' pace at the same learning rate; with ``residual_hidden`` they are ``vectors`` through one
    :class:`~softprompt.models.residual.ResidualMLP` shared by every layer and token. :meth:`folded`
    gives the plain tensor either amounts to.

    Args:
        vectors: ``(L - 1, N, H)`` initial (or loaded) vectors.
        reparam_hidden: Width of the MLP, or ``None`` for plain vectors.
        seed: Seeds the MLP's initialisation.
        residual_hidden: Bottleneck of a residual MLP over the vectors (not with ``reparam_hidden``).
    """

    def __init__(
        self,
        vectors: torch.Tensor,
        *,
        reparam_hidden: int | None = None,
        seed: int = 0,
        residual_hidden: int | None = None,
    ) -> None:
        super().__init__()
        if reparam_hidden is not None and residual_hidden is not None:
            raise ValueError("DeepPrompt: reparam_hidden and residual_hidden exclude each other")
        if vectors.dim() != 3:
            raise ValueError(
                f"deep prompt vectors must be (layers - 1, N, hidden), got {tuple(vectors.shape)}"
            )
        self.shape = tuple(vectors.shape)  # (L - 1, N, H)
        vectors = vectors.detach().float()
        self.residual = None
        if reparam_hidden is None:
            self.vectors = nn.Parameter(vectors.clone())  # fp32 master copy
            self.encoder = None
            if residual_hidden is not None:
                self.residual = ResidualMLP(self.shape[-1], residual_hidden, seed=seed + DEEP_SEED_OFFSET)
            return
        layers, n, hidden = self.shape
        gen = torch.Generator().manual_seed(seed + DEEP_SEED_OFFSET + 1)
        self.base = nn.Parameter(torch.randn(n, hidden, generator=gen))  # (N, H), as P-tuning v2's embedding
        self.encoder = nn.Sequential(
            ScaledLinear(hidden, reparam_hidden, generator=gen),
            nn.Tanh(),
            ScaledLinear(reparam_hidden, layers * hidden, generator=gen),
        )
        # centre each layer's output where its initial vectors are (mean over the N tokens)
        with torch.no_grad():
            self.encoder[2].bias.add_(vectors.mean(1).reshape(-1))

    @property
    def reparam(self) -> bool:
        """Whether the vectors come from an MLP (``deep_reparam_hidden`` or ``residual_hidden``), not parameters alone."""
        return self.encoder is not None or self.residual is not None

    def forward(self) -> torch.Tensor:
        """The ``(L - 1, N, H)`` fp32 vectors of this forward pass."""
        if self.encoder is None:
            return self.vectors if self.residual is None else self.residual(self.vectors)
        layers, n, hidden = self.shape
        out = self.encoder(self.base)  # (N, (L - 1) * H)
        return out.view(n, layers, hidden).transpose(0, 1)  # (L - 1, N, H)

    def folded(self) -> torch.Tensor:
        """The vectors as a plain detached tensor (what a prompt file stores)."""
        with torch.no_grad():
            return self().detach().clone()


@dataclass
class _Call:
    vectors: torch.Tensor  # (L - 1, N, H): every row of the batch has the same prompt (one slot per pass)
    at: int | torch.Tensor  # first virtual column, or (B,) per row (decoders' left-aligned rows)
    n: int
    batch: int
    total: int  # T + N
    count: int = 0


class DeepPromptHooks:
    """Pre-hooks on a :class:`LayerStack` that put deep vectors in place while :meth:`inject` is open.

    The open call is thread-local: ``nn.DataParallel`` runs its replicas (which share these hooks)
    in one thread each.
    """

    def __init__(self, stack: LayerStack) -> None:
        self.stack = stack
        self._local = threading.local()
        self._handles = [m.register_forward_pre_hook(self._hook, with_kwargs=True) for m in stack.modules]

    def __getstate__(self) -> dict[str, Any]:  # copy.deepcopy(wrapper): a thread-local cannot be copied
        return {k: v for k, v in self.__dict__.items() if k != "_local"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def remove(self) -> None:
        """Unregister the hooks (the wrapper does this when its last deep slot goes)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @contextlib.contextmanager
    def inject(
        self,
        vectors: torch.Tensor,
        *,
        at: int | torch.Tensor,
        n: int,
        batch: int,
        total: int,
    ) -> Iterator[None]:
        """Within this block, the layer calls of one forward get ``vectors`` ``(L - 1, N, H)`` at
        positions ``at..at+n`` of every row (a batch that mixes prompts runs one pass per prompt);
        ``at`` is an int, or a ``(B,)`` tensor for rows whose prompts start at different columns.

        Raises:
            RuntimeError: on leaving, if the layers did not run exactly ``num_layers`` times.
        """
        if not self._handles:
            raise RuntimeError(
                "deep prompt hooks were removed; this wrapper cannot run deep prompts any more"
            )
        if getattr(self._local, "call", None) is not None:
            raise RuntimeError("deep prompts: a forward is already running on this wrapper (re-entrant call)")
        self._local.call = call = _Call(vectors, at, n, batch, total)
        try:
            yield
        finally:
            self._local.call = None
        if call.count != self.stack.num_layers:
            raise RuntimeError(
                f"deep prompts: the layers in {self.stack.path} ran {call.count} times in this forward, "
                f"expected {self.stack.num_layers}; the vectors would not line up with the layers"
            )

    def _hook(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = getattr(self._local, "call", None)
        if call is None:  # not inside the wrapper's deep forward: leave the model alone
            return None
        layer = call.count
        call.count += 1
        if (
            layer == 0 or layer >= self.stack.num_layers
        ):  # layer 0 has the input prompt; extra calls fail in inject
            return None
        found = _hidden_of(args, kwargs)
        hidden = found[1] if found else None
        if hidden is None or hidden.shape != (call.batch, call.total, self.stack.hidden_size):
            raise RuntimeError(
                f"deep prompts: layer {layer} ({type(module).__name__}) got hidden states of shape "
                f"{None if hidden is None else tuple(hidden.shape)}, expected {(call.batch, call.total, self.stack.hidden_size)}"
            )
        vec = call.vectors[layer - 1].unsqueeze(0).expand(call.batch, -1, -1)  # (B, N, H)
        vec = vec.to(hidden.dtype)  # fp32 master vectors into a bf16 backbone
        at, n = call.at, call.n
        if isinstance(at, torch.Tensor):  # per-row start: each column takes a deep vector or its hidden state
            offset = torch.arange(call.total, device=hidden.device) - at.to(hidden.device)[:, None]
            inside = (offset >= 0) & (offset < n)  # (B, T + N)
            picked = vec.gather(1, offset.clamp(0, n - 1).unsqueeze(-1).expand(-1, -1, vec.shape[-1]))
            replaced = torch.where(inside.unsqueeze(-1), picked, hidden)  # (B, T + N, H), not in place
        else:
            replaced = torch.cat([hidden[:, :at], vec, hidden[:, at + n :]], dim=1)  # (B, T + N, H), a copy
        where = found[0]
        if where == 0:
            return (replaced, *args[1:]), kwargs
        return args, {**kwargs, where: replaced}
