"""`SoftPromptConfig`: every choice that defines a soft prompt, validated and JSON-serialisable.

The config travels inside each prompt file's metadata, so a file always says how it was made.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from softprompt.utils.inputs import parse_json

__all__ = [
    "MAX_VIRTUAL_TOKENS",
    "Overflow",
    "Placement",
    "PromptInit",
    "SoftPromptConfig",
    "check_deep_reparam",
]

# More prompt vectors than any model has positions for is a typo (1e18 once reached an allocation, not an error)
MAX_VIRTUAL_TOKENS = 65_536


def check_deep_reparam(
    deep: bool, deep_reparam_hidden: Any, residual_hidden: Any, *, owner: str = "SoftPromptConfig"
) -> None:
    """Refuse a ``deep_reparam_hidden`` that cannot be used: not a positive int, without ``deep``, or with
    ``residual_hidden`` (both reparameterise the deep vectors). ``owner`` names the settings in the message.

    Raises:
        ValueError: one of the above.

    Examples:
        >>> check_deep_reparam(True, 512, None)  # fine: returns None
        >>> check_deep_reparam(False, 512, None)
        Traceback (most recent call last):
        ValueError: SoftPromptConfig.deep_reparam_hidden=512 reparameterises deep prompts; set deep=True as well, or leave deep_reparam_hidden=None
    """
    if deep_reparam_hidden is None:
        return
    if residual_hidden is not None:
        raise ValueError(
            f"{owner}: residual_hidden and deep_reparam_hidden both reparameterise the deep vectors; set one of them"
        )
    if (
        isinstance(deep_reparam_hidden, bool)
        or not isinstance(deep_reparam_hidden, int)
        or deep_reparam_hidden < 1
    ):
        raise ValueError(
            f"{owner}.deep_reparam_hidden must be a positive int or None, got {deep_reparam_hidden!r}"
        )
    if not deep:
        raise ValueError(
            f"{owner}.deep_reparam_hidden={deep_reparam_hidden} reparameterises deep prompts; set deep=True as well, "
            "or leave deep_reparam_hidden=None"
        )


class PromptInit(str, Enum):
    """How the prompt vectors are initialised (Lester et al. 2021 found this matters for small models).

    Attributes:
        RANDOM: ``N(mean, std)`` of the embedding matrix, per dimension.
        VOCAB: Rows of the embedding matrix sampled from frequent tokens (the default).
        TEXT: The embeddings of ``init_text``, tiled or cut to length.
        LABELS: The embeddings of the class-label words, the rest filled like ``VOCAB``.
        PROMPT: Trained prompt files' vectors (``init_from``), averaged: prompt transfer (Vu et al.,
            SPoT, 2022), e.g. an entailment prompt as the start of another entailment task.

    Examples:
        >>> PromptInit("labels") is PromptInit.LABELS
        True
        >>> SoftPromptConfig(init="text", init_text="Is this text positive?").init
        <PromptInit.TEXT: 'text'>
    """

    RANDOM = "random"  # N(mean, std) of the embedding matrix, per dimension
    VOCAB = "vocab"  # rows of the embedding matrix sampled from frequent tokens
    TEXT = "text"  # embeddings of `init_text`, tiled or cut to length
    LABELS = "labels"  # embeddings of the class-label words, rest filled like `vocab`
    PROMPT = "prompt"  # trained prompt files' vectors (init_from), averaged


class Placement(str, Enum):
    """Where the virtual tokens go in the input sequence.

    Attributes:
        AFTER_CLS: ``[CLS] p1..pN tok1 ... [SEP]``: poolers reading position 0 still read ``[CLS]`` (the default).
        PREPEND: ``p1..pN [CLS] tok1 ... [SEP]``: PEFT's layout (and Lester et al.'s); needed for inputs that open
            with no ``[CLS]``/BOS, as T5's.

    Examples:
        >>> SoftPromptConfig(placement="prepend").placement is Placement.PREPEND
        True
    """

    AFTER_CLS = "after_cls"  # [CLS] p1..pN tok1 ... [SEP]: poolers reading position 0 still read [CLS]
    PREPEND = "prepend"  # p1..pN [CLS] tok1 ... [SEP]: PEFT's layout (and Lester et al.'s)


class Overflow(str, Enum):
    """What happens when input length + virtual tokens exceeds the model's maximum positions.

    Attributes:
        ERROR: Raise ``ValueError`` with both numbers and the fix (the default).
        TRUNCATE: Cut the real tokens, keeping the final ``[SEP]``.

    Examples:
        >>> SoftPromptConfig(overflow="truncate").overflow
        <Overflow.TRUNCATE: 'truncate'>
    """

    ERROR = "error"  # raise ValueError with both numbers and the fix
    TRUNCATE = "truncate"  # cut the real tokens, keeping the final [SEP]


def _enum(enum_cls: type[Enum], value: Any, field_name: str) -> Any:
    if isinstance(value, enum_cls):
        return value
    try:
        return enum_cls(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in enum_cls)
        raise ValueError(f"SoftPromptConfig.{field_name}={value!r} is not one of {choices}") from None


@dataclass
class SoftPromptConfig:
    """Configuration of a soft prompt.

    Args:
        num_virtual_tokens: Number of trainable prompt vectors. 20 is where Lester et al. (2021)
            saw returns flatten.
        init: One of ``"random"``, ``"vocab"``, ``"text"``, ``"labels"``, ``"prompt"`` (see :class:`PromptInit`).
        init_text: Text whose token embeddings initialise the prompt when ``init="text"``.
        label_words: Words naming the classes, in label-id order, for ``init="labels"``. Defaults
            to the model's ``id2label`` names.
        vocab_sample_size: ``init="vocab"`` samples from the first this-many ordinary tokens of the
            vocabulary (WordPiece/BPE vocabularies list frequent pieces first).
        placement: ``"after_cls"`` (default) or ``"prepend"`` (see :class:`Placement`).
        overflow: ``"error"`` (default) or ``"truncate"`` when the prompted input is too long.
        train_head: Train the classifier head with the prompt and save it in the prompt file.
            A prompt trained against a frozen random head is useless elsewhere.
        seed: Seed for the initialisation, so the same config gives the same prompt.
        init_from: Prompt files (or run folders holding ``prompt.safetensors``) that ``init="prompt"``
            starts from, averaged; trained on the same base model. Their head comes along only when
            every file has the target's task and class names (see :mod:`softprompt.models.transfer`).
        residual_hidden: Train the prompt (and a deep prompt's vectors) through a residual MLP of this
            bottleneck width (Razdaibiedina et al. 2023, see :mod:`softprompt.models.residual`); prompt
            files hold the folded plain vectors. ``None`` (default) trains the vectors directly.
        deep: Also learn vectors at the input of every later transformer layer (P-tuning v2):
            more trainable parameters (layers x N x hidden), much better on small models and hard
            tasks. See :mod:`softprompt.models.deep`.
        deep_reparam_hidden: Train the deep vectors through an MLP of this width over a learned
            base (P-tuning's prompt encoder); saved files hold the folded plain vectors. ``None``
            (default) trains them directly.
        backbone_dropout: Keep the frozen backbone's dropout active while training. Off by default:
            the backbone then computes deterministic features and uses fused attention, which made
            training steps ~40% faster in our profile (benchmarks/README.md); turn it on to
            regularise the prompt with the backbone's own dropout, as PEFT does.

    Raises:
        ValueError: a field has a bad value; the message names it.

    Examples:
        >>> cfg = SoftPromptConfig(num_virtual_tokens=20, init="labels")
        >>> SoftPromptConfig.from_json(cfg.to_json()) == cfg
        True
    """

    num_virtual_tokens: int = field(default=20, metadata={"help": "number of prompt vectors"})
    init: PromptInit = field(
        default=PromptInit.VOCAB, metadata={"help": "random | vocab | text | labels | prompt"}
    )
    init_text: str | None = field(default=None, metadata={"help": "text for init='text'"})
    label_words: list[str] | None = field(default=None, metadata={"help": "class words for init='labels'"})
    vocab_sample_size: int = field(default=5000, metadata={"help": "frequent-token pool for init='vocab'"})
    placement: Placement = field(default=Placement.AFTER_CLS, metadata={"help": "after_cls | prepend"})
    overflow: Overflow = field(default=Overflow.ERROR, metadata={"help": "error | truncate"})
    train_head: bool = field(default=True, metadata={"help": "train and save the classifier head"})
    seed: int = field(default=42, metadata={"help": "seed for the initialisation"})
    init_from: list[str] | None = field(
        default=None, metadata={"help": "prompt files init='prompt' starts from (averaged)"}
    )
    residual_hidden: int | None = field(
        default=None, metadata={"help": "bottleneck of a residual MLP the prompt trains through; None: plain"}
    )
    deep: bool = field(
        default=False, metadata={"help": "prompt vectors at every layer's input, not only the first"}
    )
    deep_reparam_hidden: int | None = field(
        default=None, metadata={"help": "MLP width reparameterising deep prompts in training; None: plain"}
    )
    backbone_dropout: bool = field(
        default=False, metadata={"help": "dropout in the frozen backbone while training"}
    )

    def __post_init__(self) -> None:
        if isinstance(self.num_virtual_tokens, bool) or not isinstance(self.num_virtual_tokens, int):
            raise ValueError(
                f"SoftPromptConfig.num_virtual_tokens must be an int, got {self.num_virtual_tokens!r}"
            )
        if not 1 <= self.num_virtual_tokens <= MAX_VIRTUAL_TOKENS:
            raise ValueError(
                f"SoftPromptConfig.num_virtual_tokens must be between 1 and {MAX_VIRTUAL_TOKENS:,} (no model has "
                f"positions for more), got {self.num_virtual_tokens}"
            )
        self.init = _enum(PromptInit, self.init, "init")
        self.placement = _enum(Placement, self.placement, "placement")
        self.overflow = _enum(Overflow, self.overflow, "overflow")
        if self.init is PromptInit.TEXT and not (isinstance(self.init_text, str) and self.init_text.strip()):
            raise ValueError(
                "SoftPromptConfig(init='text') needs a non-empty init_text, e.g. init_text='classify the sentiment'"
            )
        if self.label_words is not None:
            if isinstance(self.label_words, str) or not all(
                isinstance(w, str) and w.strip() for w in self.label_words
            ):
                raise ValueError(
                    f"SoftPromptConfig.label_words must be a list of non-empty strings, got {self.label_words!r}"
                )
            self.label_words = list(self.label_words)
        if not isinstance(self.vocab_sample_size, int) or self.vocab_sample_size < 1:
            raise ValueError(
                f"SoftPromptConfig.vocab_sample_size must be a positive int, got {self.vocab_sample_size!r}"
            )
        if not isinstance(self.train_head, bool):
            raise ValueError(f"SoftPromptConfig.train_head must be True or False, got {self.train_head!r}")
        if not isinstance(self.backbone_dropout, bool):
            raise ValueError(
                f"SoftPromptConfig.backbone_dropout must be True or False, got {self.backbone_dropout!r}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"SoftPromptConfig.seed must be an int, got {self.seed!r}")
        if not isinstance(self.deep, bool):
            raise ValueError(f"SoftPromptConfig.deep must be True or False, got {self.deep!r}")
        self._check_transfer()
        if self.residual_hidden is not None and (
            isinstance(self.residual_hidden, bool)
            or not isinstance(self.residual_hidden, int)
            or not 1 <= self.residual_hidden <= MAX_VIRTUAL_TOKENS
        ):
            raise ValueError(
                f"SoftPromptConfig.residual_hidden must be a positive int (at most {MAX_VIRTUAL_TOKENS:,}) "
                f"or None, got {self.residual_hidden!r}"
            )
        check_deep_reparam(self.deep, self.deep_reparam_hidden, self.residual_hidden)

    def _check_transfer(self) -> None:
        if self.init is PromptInit.PROMPT:
            files = self.init_from
            if isinstance(files, (str, bytes)) or not isinstance(files, (list, tuple)) or not files:
                raise ValueError(
                    "SoftPromptConfig(init='prompt') needs init_from: a list of trained prompt files "
                    f"(e.g. init_from=['nli/prompt.safetensors']), got {files!r}"
                )
            if not all(isinstance(f, str) and f.strip() for f in files):
                raise ValueError(f"SoftPromptConfig.init_from must hold non-empty paths, got {files!r}")
            self.init_from = [str(f) for f in files]
        elif self.init_from is not None:
            raise ValueError(
                f"SoftPromptConfig.init_from={self.init_from!r} is read by init='prompt' only; set init='prompt' "
                f"(init is {self.init.value!r})"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict (enums as their string values).

        Returns:
            Every field by name.

        Examples:
            >>> SoftPromptConfig(num_virtual_tokens=8).to_dict()["num_virtual_tokens"]
            8
        """
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, Enum):
                out[key] = value.value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SoftPromptConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise so a newer file is not misread silently.

        Args:
            data: Fields by name (any subset; the rest take their defaults).

        Returns:
            The config.

        Raises:
            ValueError: ``data`` is not a dict, names an unknown field, or holds a value the config refuses.

        Examples:
            >>> SoftPromptConfig.from_dict({"num_virtual_tokens": 8, "placement": "prepend"}).placement
            <Placement.PREPEND: 'prepend'>
        """
        if not isinstance(data, dict):
            raise ValueError(f"SoftPromptConfig.from_dict expects a dict, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown SoftPromptConfig fields {unknown}; known fields are {sorted(known)}")
        return cls(**data)

    def to_json(self) -> str:
        """The config as one line of JSON, keys sorted (what a prompt file's metadata holds).

        Returns:
            The JSON text.

        Examples:
            >>> SoftPromptConfig.from_json(SoftPromptConfig(num_virtual_tokens=8).to_json()).num_virtual_tokens
            8
        """
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SoftPromptConfig:
        """Inverse of :meth:`to_json`.

        Args:
            text: JSON text of an object (bounded in size and nesting).

        Returns:
            The config.

        Raises:
            ValueError: not valid JSON, or as :meth:`from_dict`.

        Examples:
            >>> SoftPromptConfig.from_json('{"num_virtual_tokens": 8}').num_virtual_tokens
            8
        """
        return cls.from_dict(parse_json(text, "SoftPromptConfig JSON"))
