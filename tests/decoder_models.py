"""Tiny decoder-only and encoder-decoder models built from configs, and hand-padded batches of token ids.

Token ids are those of ``tests.conftest.VOCAB`` (no tokenizer needed): texts are lists of ordinary
word ids, padded here on the side a test asks for. Llama and Mistral texts open with BOS (their
tokenizers add it), GPT-2 and Qwen2 texts do not (theirs do not), as with the real models.
"""

from __future__ import annotations

import torch
import transformers

from tests.conftest import CLS_ID, HEADS, HIDDEN, LAYERS, MAX_POS, NUM_LABELS, PAD_ID, SEP_ID, VOCAB

DECODERS = ["gpt2", "llama", "qwen2", "mistral"]
OPENS_WITH_BOS = {"gpt2": False, "llama": True, "qwen2": False, "mistral": True}
BOS_ID = CLS_ID  # Llama/Mistral BOS
EOT_ID = SEP_ID  # GPT-2's <|endoftext|>: its bos, eos and (as usually set) pad token at once
FIRST_WORD = 8  # ids below are special or unused
TEXT_LENGTHS = (3, 7, 1, 5)  # the longest row pads the others by up to 6


def decoder_config(family: str, num_labels: int = NUM_LABELS, pad_token_id: int | None = PAD_ID):
    """A tiny config of a decoder-only ``family`` (a key of :data:`DECODERS`)."""
    T = transformers
    common = dict(vocab_size=len(VOCAB), num_labels=num_labels, pad_token_id=pad_token_id)
    llama_like = dict(
        hidden_size=HIDDEN, intermediate_size=37, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        num_key_value_heads=1, max_position_embeddings=MAX_POS, **common,
    )  # fmt: skip
    if family == "gpt2":  # pad = bos = eos, as GPT-2 is used in practice (pad_token = eos_token)
        pad = EOT_ID if pad_token_id is not None else None
        return T.GPT2Config(
            vocab_size=len(VOCAB), n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS, n_positions=MAX_POS, num_labels=num_labels,
            pad_token_id=pad, bos_token_id=EOT_ID, eos_token_id=EOT_ID, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        )  # fmt: skip
    if family == "llama":
        return T.LlamaConfig(bos_token_id=BOS_ID, eos_token_id=SEP_ID, **llama_like)
    if family == "qwen2":  # Qwen2's config names a bos id its tokenizer never adds
        return T.Qwen2Config(bos_token_id=SEP_ID, eos_token_id=SEP_ID, **llama_like)
    if family == "mistral":
        return T.MistralConfig(bos_token_id=BOS_ID, eos_token_id=SEP_ID, sliding_window=None, **llama_like)
    raise KeyError(family)


def make_decoder(family: str, auto=transformers.AutoModelForSequenceClassification, seed: int = 0, **kwargs):
    """A tiny random decoder-only model of ``family`` with the head of ``auto``, in eval mode."""
    torch.manual_seed(seed)
    return auto.from_config(decoder_config(family, **kwargs)).eval()


def seq2seq_config(family: str):
    """A tiny encoder-decoder config (``"t5"`` or ``"bart"``)."""
    T = transformers
    if family == "t5":
        return T.T5Config(
            vocab_size=len(VOCAB), d_model=HIDDEN, d_kv=8, d_ff=37, num_layers=LAYERS, num_heads=HEADS,
            pad_token_id=PAD_ID, eos_token_id=SEP_ID, decoder_start_token_id=PAD_ID, dropout_rate=0.0,
        )  # fmt: skip
    if family == "bart":
        return T.BartConfig(
            vocab_size=len(VOCAB), d_model=HIDDEN, encoder_layers=LAYERS, decoder_layers=LAYERS, encoder_attention_heads=HEADS,
            decoder_attention_heads=HEADS, encoder_ffn_dim=37, decoder_ffn_dim=37, max_position_embeddings=MAX_POS,
            pad_token_id=PAD_ID, bos_token_id=CLS_ID, eos_token_id=SEP_ID, decoder_start_token_id=SEP_ID, dropout=0.0,
        )  # fmt: skip
    raise KeyError(family)


def texts(family: str, lengths: tuple[int, ...] = TEXT_LENGTHS, seed: int = 0) -> list[list[int]]:
    """Token id lists of the given word counts, opening with BOS where ``family``'s tokenizer adds one."""
    gen = torch.Generator().manual_seed(seed)
    bos = [BOS_ID] if OPENS_WITH_BOS.get(family, False) else []
    return [bos + torch.randint(FIRST_WORD, len(VOCAB), (k,), generator=gen).tolist() for k in lengths]


def padded(rows: list[list[int]], side: str, pad_id: int = PAD_ID) -> dict[str, torch.Tensor]:
    """``input_ids`` and ``attention_mask`` ``(B, T)``, each row padded on ``side`` to the longest."""
    width = max(map(len, rows))
    ids, mask = [], []
    for row in rows:
        pad = width - len(row)
        ids.append([pad_id] * pad + row if side == "left" else row + [pad_id] * pad)
        mask.append([0] * pad + [1] * len(row) if side == "left" else [1] * len(row) + [0] * pad)
    return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}


def pad_id_of(model) -> int:
    """The id the batches of ``model`` are padded with (its config's pad id, else 0)."""
    pad = getattr(model.config, "pad_token_id", None)
    return PAD_ID if pad is None else pad


def spliced_alone(model, row: list[int], prompt: torch.Tensor, at: int, **kwargs):
    """The bare ``model`` on one unpadded row with ``prompt`` ``(N, E)`` spliced in by hand before column ``at``."""
    embeds = model.get_input_embeddings()(torch.tensor([row]))  # (1, T, E)
    inputs = torch.cat([embeds[:, :at], prompt.unsqueeze(0).to(embeds.dtype), embeds[:, at:]], dim=1)
    return model(inputs_embeds=inputs, **kwargs)  # (1, T + N, E) in: no padding, no attention_mask needed


# encoder-decoder LMs: where the prompt goes in the encoder's input (T5's tokenizer opens with nothing,
# BART's with <s>), and the placement that puts it there
SEQ2SEQ_AT = {"t5": 0, "bart": 1}
SEQ2SEQ_PLACEMENT = {"t5": "prepend", "bart": "after_cls"}


def seq2seq_texts(family: str, lengths: tuple[int, ...] = (4, 1, 6), seed: int = 0) -> list[list[int]]:
    """Encoder inputs as the family's tokenizer makes them: ``[<s>] words </s>``."""
    gen = torch.Generator().manual_seed(seed)
    opening = [CLS_ID] if SEQ2SEQ_AT[family] else []
    return [
        opening + torch.randint(FIRST_WORD, 100, (k,), generator=gen).tolist() + [SEP_ID] for k in lengths
    ]


def seq2seq_targets(count: int) -> torch.Tensor:
    """Decoder labels ``(count, 3)``: target ids then </s>, -100 on padding."""
    rows = [[20 + i, 30 + i, SEP_ID] if i % 2 == 0 else [40 + i, SEP_ID, -100] for i in range(count)]
    return torch.tensor(rows)


def encoder_spliced(
    model, batch: dict[str, torch.Tensor], prompt: torch.Tensor, at: int
) -> dict[str, torch.Tensor]:
    """The bare model's encoder inputs with ``prompt`` ``(N, E)`` spliced in by hand before column ``at``."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    embeds = model.get_input_embeddings()(ids)  # (B, T, E)
    b, n = ids.shape[0], prompt.shape[0]
    return {
        "inputs_embeds": torch.cat([embeds[:, :at], prompt.expand(b, -1, -1), embeds[:, at:]], dim=1),
        "attention_mask": torch.cat([mask[:, :at], torch.ones(b, n, dtype=mask.dtype), mask[:, at:]], dim=1),
    }
