"""Merged exports (softprompt.hub.merged): the folder, loaded in a process where softprompt cannot be imported,
gives the wrapper's logits (1e-5), ``generate`` ids and pipeline predictions, for every family and task.

One module-scoped fixture exports every case and runs tests/export_runner.py once over all of them (a
second Python process, with an import blocker for softprompt); each test then compares one case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tokenizers
import torch
import transformers

from softprompt import SoftPromptConfig, SoftPromptWrapper
from tests.conftest import ARCHS, CLS_ID, MAX_POS, SEP_ID, VOCAB, make_tokenizer, model_config
from tests.decoder_models import decoder_config, make_decoder, seq2seq_config

RUNNER = Path(__file__).with_name("export_runner.py")
TOL = 1e-5
K = 4
# no out-of-vocabulary word: the tiny vocabulary's [UNK] has id 1, which MPNet's position numbering takes for padding
TEXTS = ["great film superb acting", "dull", "the worst movie i ever watch really"]
PAIRS = [("great film", "superb acting"), ("dull", "the worst movie"), ("very", "bad")]
LONG = [" ".join(["film"] * 80), "great"]  # longer than the model's 64 positions: truncated alike
WORD_TEXTS = ["great film superb acting", "dull movie", "the worst movie i ever watch"]
QA = [
    ("who acting ?", "great film superb acting never dull"),
    ("what ?", "the worst movie i ever watch really"),
]


SEQUENCE_TASK_ARCHS = ("bert", "roberta", "deberta-v2", "modernbert")  # multi-label, regression, QA too


def decoder_tokenizer(family: str) -> transformers.PreTrainedTokenizerFast:
    """A word-level fast tokenizer over the test vocabulary, opening/closing texts as ``family``'s does."""
    model = tokenizers.models.WordLevel({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]")
    tok = tokenizers.Tokenizer(model)
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    cls, sep = ("[CLS]", CLS_ID), ("[SEP]", SEP_ID)
    templates = {"llama": ("[CLS] $A", "[CLS] $A $B"), "t5": ("$A [SEP]", "$A [SEP] $B [SEP]"),
                 "bart": ("[CLS] $A [SEP]", "[CLS] $A [SEP] $B [SEP]")}  # fmt: skip
    if family in templates:
        single, pair = templates[family]
        tok.post_processor = tokenizers.processors.TemplateProcessing(
            single=single, pair=pair, special_tokens=[cls, sep]
        )
    pad = "[SEP]" if family == "gpt2" else "[PAD]"
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="[CLS]" if family != "gpt2" else "[SEP]", eos_token="[SEP]", pad_token=pad,
        unk_token="[UNK]", model_max_length=MAX_POS,
    )  # fmt: skip


def _randomised(wrapper: SoftPromptWrapper, temperature: float = 1.0) -> SoftPromptWrapper:
    """A prompt and head unlike the model's own (the export must carry the slot's), and a temperature."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        slot = wrapper.slot()
        slot.prompt.copy_(torch.randn(slot.prompt.shape, generator=gen))
        for param in slot.head_params().values():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
    wrapper.slot().temperature = temperature
    return wrapper.eval()


def _encoder(
    arch: str, auto, num_labels: int = 2, problem_type: str | None = None, placement: str = "after_cls"
):
    torch.manual_seed(0)
    config = model_config(arch, num_labels)
    if problem_type:
        config.problem_type = problem_type
    model = auto.from_config(config).eval()
    return SoftPromptWrapper(
        model, SoftPromptConfig(num_virtual_tokens=K, placement=placement), tokenizer=make_tokenizer()
    )


def _cases() -> dict[str, dict]:
    """name -> {"wrapper", "jobs": {job name: runner job}, "expect": {job name: what the wrapper gives}}."""
    T = transformers
    cases: dict[str, dict] = {}
    for arch in ARCHS:  # sequence classification, single texts and pairs, both placements, calibrated
        for placement in ("after_cls", "prepend"):
            w = _randomised(_encoder(arch, T.AutoModelForSequenceClassification, placement=placement), 1.7)
            cases[f"{arch}-seq-{placement}"] = {
                "wrapper": w,
                "kind": "seq",
                "auto": "AutoModelForSequenceClassification",
            }
        w = _randomised(_encoder(arch, T.AutoModelForTokenClassification, num_labels=5))
        w.slot().id2label = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
        cases[f"{arch}-token"] = {"wrapper": w, "kind": "token", "auto": "AutoModelForTokenClassification"}
    w = _randomised(_encoder("bert", T.AutoModel))  # a bare encoder: features, for feature-extraction
    cases["bert-base"] = {"wrapper": w, "kind": "base", "auto": "AutoModel"}
    for arch in SEQUENCE_TASK_ARCHS:
        w = _randomised(_encoder(arch, T.AutoModelForSequenceClassification, 3, "multi_label_classification"))
        cases[f"{arch}-multilabel"] = {
            "wrapper": w,
            "kind": "seq",
            "auto": "AutoModelForSequenceClassification",
        }
        w = _randomised(_encoder(arch, T.AutoModelForSequenceClassification, 1, "regression"))
        cases[f"{arch}-regression"] = {
            "wrapper": w,
            "kind": "seq",
            "auto": "AutoModelForSequenceClassification",
        }
        w = _randomised(_encoder(arch, T.AutoModelForQuestionAnswering))
        cases[f"{arch}-qa"] = {"wrapper": w, "kind": "qa", "auto": "AutoModelForQuestionAnswering"}
    for family in ("gpt2", "llama"):
        torch.manual_seed(0)
        model = make_decoder(family)
        w = SoftPromptWrapper(
            model, SoftPromptConfig(num_virtual_tokens=K), tokenizer=decoder_tokenizer(family)
        )
        cases[f"{family}-seq"] = {"wrapper": _randomised(w, 0.8), "kind": "decoder-seq",
                                  "auto": "AutoModelForSequenceClassification"}  # fmt: skip
        torch.manual_seed(0)
        lm = T.AutoModelForCausalLM.from_config(decoder_config(family)).eval()
        w = SoftPromptWrapper(lm, SoftPromptConfig(num_virtual_tokens=K), tokenizer=decoder_tokenizer(family))
        cases[f"{family}-lm"] = {"wrapper": _randomised(w), "kind": "causal", "auto": "AutoModelForCausalLM"}
    for family, placement in (("t5", "prepend"), ("bart", "after_cls")):
        torch.manual_seed(0)
        lm = T.AutoModelForSeq2SeqLM.from_config(seq2seq_config(family)).eval()
        w = SoftPromptWrapper(lm, SoftPromptConfig(num_virtual_tokens=K, placement=placement),
                              tokenizer=decoder_tokenizer(family))  # fmt: skip
        cases[f"{family}-lm"] = {
            "wrapper": _randomised(w),
            "kind": "seq2seq",
            "auto": "AutoModelForSeq2SeqLM",
        }
    return cases


def _pipeline_job(folder: str, task: str, inputs: list, kwargs: dict) -> dict:
    """A runner job: ``pipeline(task, model=folder)(inputs, **kwargs)``."""
    return {"folder": folder, "kind": "pipeline", "task": task, "inputs": inputs, "kwargs": kwargs}


def _jobs(case: dict, folder: str) -> dict[str, dict]:
    kind, auto = case["kind"], case["auto"]
    base = {"folder": folder, "auto": auto}
    if kind == "seq":
        return {
            "single": {**base, "kind": "forward", "inputs": TEXTS, "outputs": ["logits"]},
            "pairs": {**base, "kind": "forward", "inputs": PAIRS, "pairs": True, "outputs": ["logits"]},
            "long": {**base, "kind": "forward", "inputs": LONG, "truncation": True, "outputs": ["logits"]},
            "pipeline": _pipeline_job(folder, "text-classification", TEXTS, {"top_k": None}),
        }
    if kind == "token":
        return {
            "single": {**base, "kind": "forward", "inputs": WORD_TEXTS, "outputs": ["logits"]},
            "pipeline": _pipeline_job(
                folder, "token-classification", WORD_TEXTS, {"aggregation_strategy": "first"}
            ),
        }
    if kind == "base":
        return {"single": {**base, "kind": "forward", "inputs": TEXTS, "outputs": ["last_hidden_state"]}}
    if kind == "qa":
        return {"single": {**base, "kind": "forward", "inputs": QA, "pairs": True,
                           "outputs": ["start_logits", "end_logits"]}}  # fmt: skip
    if kind == "decoder-seq":
        return {
            "single": {**base, "kind": "forward", "inputs": TEXTS, "outputs": ["logits"]},
            "each": {**base, "kind": "forward_each", "inputs": TEXTS, "outputs": ["logits"]},
            "pipeline": _pipeline_job(folder, "text-classification", TEXTS, {"top_k": None}),
        }
    if kind == "causal":
        return {
            "each": {**base, "kind": "forward_each", "inputs": TEXTS, "outputs": ["logits"]},
            "generate": {**base, "kind": "generate", "inputs": TEXTS, "max_new_tokens": 6, "causal": True},
        }
    return {"generate": {**base, "kind": "generate", "inputs": TEXTS, "max_new_tokens": 6}}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("export")
    cases = _cases()
    jobs = {}
    for name, case in cases.items():
        folder = case["wrapper"].export_merged(root / name)
        case["folder"] = folder
        for job, spec in _jobs(case, str(folder)).items():
            jobs[f"{name}/{job}"] = spec
    (root / "jobs.json").write_text(json.dumps(jobs))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": ""}
    proc = subprocess.run(
        [sys.executable, str(RUNNER), str(root / "jobs.json"), str(root / "out.json")],
        cwd=root, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((root / "out.json").read_text())
    for name, case in cases.items():
        case["results"] = {
            job.split("/", 1)[1]: out for job, out in results.items() if job.startswith(name + "/")
        }
    return cases


def _close(got, expected: torch.Tensor, mask: torch.Tensor | None = None) -> None:
    """``got`` equals ``expected`` to 1e-5; per-token outputs only where ``mask`` ``(B, T)`` is 1 (padding's
    outputs differ where a model numbers padded positions differently given ids than given embeddings)."""
    got = torch.as_tensor(got)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    if mask is not None:
        got, expected = got[mask.bool()], expected[mask.bool()]
    torch.testing.assert_close(got, expected.float(), rtol=0, atol=TOL)


def _without_prompt(x: torch.Tensor, at: int) -> torch.Tensor:
    """``(B, T + K, ...)`` per-token outputs of the export without the prompt's columns."""
    return torch.cat([x[:, :at], x[:, at + K :]], dim=1)


def _case_names() -> list[str]:
    names = []
    for arch in ARCHS:
        names += [f"{arch}-seq-after_cls", f"{arch}-seq-prepend", f"{arch}-token"]
    for arch in SEQUENCE_TASK_ARCHS:
        names += [f"{arch}-multilabel", f"{arch}-regression", f"{arch}-qa"]
    names += ["bert-base", "gpt2-seq", "llama-seq", "gpt2-lm", "llama-lm", "t5-lm", "bart-lm"]
    return names


@pytest.mark.parametrize("name", _case_names())
def test_export_matches_wrapper_without_softprompt(exported, name):
    case = exported[name]
    w, res, kind = case["wrapper"], case["results"], case["kind"]
    at = json.loads((case["folder"] / "config.json").read_text())["softprompt_export"]["insert_at"]
    temperature = (
        w.slot().temperature
        if w.slot().task is not None and w.slot().task.type.value == "classification"
        else 1.0
    )
    with torch.no_grad():
        if kind in ("seq", "decoder-seq"):
            _close(res["single"]["logits"], w(**w.tokenize(TEXTS)).logits / temperature)
        if kind == "seq":
            first, second = zip(*PAIRS)
            _close(res["pairs"]["logits"], w(**w.tokenize(list(first), list(second))).logits / temperature)
            _close(res["long"]["logits"], w(**w.tokenize(LONG)).logits / temperature)
            assert len(res["long"]["input_ids"][0]) == MAX_POS  # K prompt tokens + 60 of text and specials
        if kind == "decoder-seq":
            for text, got in zip(TEXTS, res["each"]["logits"]):
                _close(got, w(**w.tokenize([text])).logits[0] / temperature)
        if kind == "token":
            enc = w.tokenize(WORD_TEXTS)
            _close(
                _without_prompt(torch.tensor(res["single"]["logits"]), at),
                w(**enc).logits,
                enc["attention_mask"],
            )
        if kind == "base":
            enc = w.tokenize(TEXTS)
            features = _without_prompt(torch.tensor(res["single"]["last_hidden_state"]), at)
            _close(features, w(**enc).last_hidden_state, enc["attention_mask"])
        if kind == "qa":
            first, second = zip(*QA)
            enc = w.tokenize(list(first), list(second))
            out = w(**enc)
            for key in ("start_logits", "end_logits"):
                _close(_without_prompt(torch.tensor(res["single"][key]), at), out[key], enc["attention_mask"])
        if kind == "causal":
            vocab = len(VOCAB)
            for text, got in zip(TEXTS, res["each"]["logits"]):
                enc = w.tokenizer([text], return_tensors="pt")
                ref = w(**enc).logits  # (1, T, V)
                _close(_without_prompt(torch.tensor([got]), at)[..., :vocab], ref)
        if kind in ("causal", "seq2seq"):
            for text, got in zip(TEXTS, res["generate"]["generated"]):
                enc = w.tokenizer([text], return_tensors="pt")
                ids = w.generate(**enc, max_new_tokens=6, do_sample=False)
                want = ids[0, enc["input_ids"].shape[1] :] if kind == "causal" else ids[0]
                assert got == want.tolist()


PIPELINE_CASES = [n for n in _case_names() if n.split("-")[-1] in ("after_cls", "prepend", "token", "multilabel", "regression")
                  or n in ("gpt2-seq", "llama-seq")]  # fmt: skip


@pytest.mark.parametrize("name", PIPELINE_CASES)
def test_pipeline_of_export_gives_wrapper_predict(exported, name):
    """``pipeline(...)`` on the folder, without softprompt, predicts what ``wrapper.predict`` does: class and
    calibrated confidence, multi-label scores, regression values, and token classification's entities
    (``aggregation_strategy="first"``: each word's tag at its first sub-word, as softprompt groups them)."""
    case = exported[name]
    got = case["results"]["pipeline"]["output"]
    if case["kind"] == "token":
        want = case["wrapper"].predict(WORD_TEXTS)
        for row, entities in zip(got, want):
            assert [(e["entity_group"], e["start"], e["end"], e["word"]) for e in row] == [
                (e.entity_type, e.start, e.end, e.text) for e in entities
            ]
            assert [e["score"] for e in row] == pytest.approx([e.score for e in entities], abs=TOL)
        return
    for row, prediction in zip(got, case["wrapper"].predict(TEXTS)):
        scores = {item["label"]: item["score"] for item in row}
        if hasattr(prediction, "value"):  # regression: the pipeline gives the raw value
            assert scores["LABEL_0"] == pytest.approx(prediction.value, abs=TOL)
        elif hasattr(prediction, "scores"):  # multi-label: one sigmoid per class
            assert scores == pytest.approx(prediction.scores, abs=TOL)
        else:
            assert row[0]["label"] == prediction.label_name
            assert row[0]["score"] == pytest.approx(prediction.confidence, abs=TOL)
