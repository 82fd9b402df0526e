"""Shared fixtures: a tiny in-memory WordPiece tokenizer and tiny random encoders of every supported family.

No network: models are built from configs, the tokenizer from a vocabulary list.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import transformers

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# tiny sizes, shared by every test
HIDDEN = 32
EMBED = 16  # ALBERT/ELECTRA embedding size, deliberately != HIDDEN
LAYERS = 2
HEADS = 2
MAX_POS = 64
NUM_LABELS = 2

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [
    "the",
    "a",
    "an",
    "and",
    "of",
    "to",
    "is",
    "was",
    "it",
    "this",
    "that",
    "film",
    "movie",
    "great",
    "good",
    "bad",
    "dull",
    "boring",
    "superb",
    "fantastic",
    "awful",
    "acting",
    "plot",
    "story",
    "negative",
    "positive",
    "i",
    "loved",
    "hated",
    "watch",
    "again",
    "never",
    "best",
    "worst",
    "ever",
    "really",
    "very",
    "not",
]
VOCAB = SPECIALS + [f"[unused{i}]" for i in range(3)] + WORDS + [f"w{i}" for i in range(60)]
PAD_ID, CLS_ID, SEP_ID = 0, 2, 3

IMDB_DIR = Path(
    os.environ.get("SOFTPROMPT_IMDB_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb")
)


def make_tokenizer() -> transformers.PreTrainedTokenizerBase:
    tok = transformers.BertTokenizer(vocab={t: i for i, t in enumerate(VOCAB)})
    tok.model_max_length = MAX_POS
    return tok


@pytest.fixture(scope="session")
def tokenizer() -> transformers.PreTrainedTokenizerBase:
    return make_tokenizer()


# tiny models gain nothing from a second thread, and lose a lot when the other core is busy
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _common(num_layers: int = LAYERS, **extra: object) -> dict:
    base = dict(
        vocab_size=len(VOCAB),
        hidden_size=HIDDEN,
        num_hidden_layers=num_layers,
        num_attention_heads=HEADS,
        intermediate_size=37,
        max_position_embeddings=MAX_POS,
        pad_token_id=PAD_ID,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    base.update(extra)
    return base


def model_config(
    arch: str, num_labels: int = NUM_LABELS, num_layers: int = LAYERS
) -> transformers.PretrainedConfig:
    """A tiny config of ``arch`` (a key of ARCHS)."""
    T = transformers
    labels = {"num_labels": num_labels}
    if arch == "bert":
        return T.BertConfig(**_common(num_layers), **labels)
    if arch == "roberta":  # positions offset by padding_idx + 1, as in the real model
        return T.RobertaConfig(
            **_common(
                num_layers,
                max_position_embeddings=MAX_POS + PAD_ID + 1,
                bos_token_id=CLS_ID,
                eos_token_id=SEP_ID,
            ),
            **labels,
        )
    if arch == "xlm-roberta":
        return T.XLMRobertaConfig(
            **_common(
                num_layers,
                max_position_embeddings=MAX_POS + PAD_ID + 1,
                bos_token_id=CLS_ID,
                eos_token_id=SEP_ID,
            ),
            **labels,
        )
    if arch == "distilbert":
        return T.DistilBertConfig(
            vocab_size=len(VOCAB), dim=HIDDEN, n_layers=num_layers, n_heads=HEADS, hidden_dim=37, max_position_embeddings=MAX_POS,
            pad_token_id=PAD_ID, dropout=0.0, attention_dropout=0.0, seq_classif_dropout=0.0, **labels,
        )  # fmt: skip
    if arch == "albert":
        return T.AlbertConfig(
            **_common(num_layers, embedding_size=EMBED, hidden_dropout_prob=0.0, classifier_dropout_prob=0.0),
            **labels,
        )
    if arch == "electra":
        return T.ElectraConfig(**_common(num_layers, embedding_size=EMBED), **labels)
    if arch == "deberta-v2":
        return T.DebertaV2Config(
            **_common(num_layers, relative_attention=True, position_biased_input=False, pos_att_type=["p2c", "c2p"], max_relative_positions=-1,
                      pooler_hidden_size=HIDDEN, pooler_dropout=0.0), **labels,
        )  # fmt: skip
    if arch == "mpnet":
        return T.MPNetConfig(
            **_common(
                num_layers,
                max_position_embeddings=MAX_POS + 2,  # MPNet fixes padding_idx=1
                bos_token_id=CLS_ID,
                eos_token_id=SEP_ID,
            ),
            **labels,
        )
    if arch == "modernbert":
        return T.ModernBertConfig(
            vocab_size=len(VOCAB), hidden_size=HIDDEN, intermediate_size=48, num_hidden_layers=num_layers, num_attention_heads=HEADS,
            max_position_embeddings=MAX_POS, pad_token_id=PAD_ID, cls_token_id=CLS_ID, bos_token_id=CLS_ID, sep_token_id=SEP_ID,
            eos_token_id=SEP_ID, local_attention=16, **labels,
        )  # fmt: skip
    raise KeyError(arch)


ARCHS = ["bert", "roberta", "distilbert", "albert", "electra", "deberta-v2", "xlm-roberta", "mpnet"]
if hasattr(transformers, "ModernBertConfig"):
    ARCHS.append("modernbert")

HEADS_BY_TASK = {
    "seq": transformers.AutoModelForSequenceClassification,
    "token": transformers.AutoModelForTokenClassification,
    "base": transformers.AutoModel,
}


def make_model(
    arch: str = "bert",
    task: str = "seq",
    num_labels: int = NUM_LABELS,
    seed: int = 0,
    num_layers: int = LAYERS,
) -> transformers.PreTrainedModel:
    """A tiny random model, in eval mode, with deterministic weights."""
    torch.manual_seed(seed)
    config = model_config(arch, num_labels, num_layers)
    model = HEADS_BY_TASK[task].from_config(config)
    return model.eval()


@pytest.fixture
def bert_seq() -> transformers.PreTrainedModel:
    return make_model("bert", "seq")


def batch(
    tokenizer: transformers.PreTrainedTokenizerBase, texts: list[str] | None = None
) -> dict[str, torch.Tensor]:
    texts = texts or ["great film , superb acting", "dull", "the worst movie i ever watch really"]
    return dict(tokenizer(texts, return_tensors="pt", padding=True))


def bare_arithmetic(wrapper):
    """``wrapper`` (or a fine-tuned model, which ``predict_logits`` gives the same levers) with its speed levers
    off (last-layer trim, oneDNN linears): bit for bit the bare model's arithmetic, for tests that compare with
    ``torch.equal`` or with ``Trainer``'s own evaluation. The levers themselves are compared with the bare model
    to float rounding in tests/test_first_token.py, tests/test_onednn.py and tests/test_finetune_levers.py."""
    wrapper.trim_last_layer = wrapper.onednn_linear = False
    return wrapper


def after_cls_reference(
    model: transformers.PreTrainedModel, prompt: torch.Tensor, batch: dict, labels: torch.Tensor | None = None
):
    """The bare model's output with ``prompt`` ``(N, E)`` spliced in by hand after [CLS], in segment A.

    What the wrapper's default placement must equal: ``[CLS] p1..pN tokens...``, mask ones, segment 0.
    """
    ids, mask, tt = batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
    b, n = ids.shape[0], prompt.shape[0]
    embeds = model.get_input_embeddings()(ids)  # (B, T, E)
    ones, zeros = torch.ones(b, n, dtype=torch.long), torch.zeros(b, n, dtype=torch.long)
    return model(
        inputs_embeds=torch.cat([embeds[:, :1], prompt.unsqueeze(0).expand(b, -1, -1), embeds[:, 1:]], 1),
        attention_mask=torch.cat([mask[:, :1], ones, mask[:, 1:]], 1),
        token_type_ids=torch.cat([tt[:, :1], zeros, tt[:, 1:]], 1),
        labels=labels,
    )


@pytest.fixture(scope="module")
def assets(tmp_path_factory, tokenizer):
    """A tiny BERT folder (weights + tokenizer) and a data folder with train/test parquet: what the
    command-line tests run on."""
    from tests.test_trainer import learnable_wrapper, toy_sentiment

    root = tmp_path_factory.mktemp("cli")
    model_dir = root / "tiny-bert"
    wrapper = learnable_wrapper(tokenizer)
    wrapper.model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    data_dir = root / "imdb"  # an IMDb-like folder: label names neg/pos
    data_dir.mkdir()
    toy_sentiment(48, seed=0).to_parquet(data_dir / "train.parquet")
    toy_sentiment(24, seed=1).to_parquet(data_dir / "test.parquet")
    return model_dir, data_dir
