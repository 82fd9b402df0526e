"""Extractive question answering end to end on tiny models: SQuAD rows -> windows -> positions -> train -> answers.

Ten question/context pairs written here; a fast WordPiece tokenizer (offsets map tokens back to
characters) whose vocabulary is the conftest one with its last entries swapped for the words used.
"""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch
import transformers

from softprompt import (
    Answer,
    SoftPromptConfig,
    SoftPromptWrapper,
    Task,
    TaskType,
    build_compute_metrics,
    compute_task_metrics,
    evaluate_model,
    load_data,
    predict,
    read_prompt_file,
    tokenize_dataset,
    train_prompt,
)
from softprompt.data.qa import answer_token_span, context_offsets, encode_windows, null_position
from softprompt.metrics.squad import answer_f1, exact_match, normalize_answer, squad_scores
from softprompt.models.spans import answer_positions, best_span
from softprompt.tasks import family_for
from softprompt.tasks.answers import answers_from_windows, predict_answers
from softprompt.tasks.question_answering import check_answer_positions
from tests.conftest import VOCAB, bare_arithmetic, model_config

N = 4  # virtual tokens
MAX_LENGTH = 32  # prompted windows: 28 real tokens at most
EXTRA = [
    "who", "what", "where", "wrote", "written", "book", "by", "ada", "bob", "paris", "london", "lives", "in",
    "does", "with", "his", "dog", "cat", "city", "river", "runs", "through", "near", "has", "?", ".", ",",
]  # fmt: skip
QA_VOCAB = VOCAB[: -len(EXTRA)] + EXTRA  # same size as the conftest vocabulary: the tiny configs fit

# (question, context, answer); each answer's first occurrence in its context is the gold span
PAIRS = [
    ("who wrote the book ?", "the book was written by ada in paris .", "ada"),
    ("where does bob live ?", "bob lives in london with his dog .", "london"),
    ("what does bob live with ?", "bob lives in london with his dog .", "his dog"),
    ("who lives in paris ?", "ada lives in paris with her cat .", "ada"),
    ("what river runs through the city ?", "the city has a river , the river runs near paris .", "river"),
    ("where was the book written ?", "the book was written by ada in paris .", "paris"),
    ("who has a dog ?", "bob has a dog and ada has a cat .", "bob"),
    ("who has a cat ?", "bob has a dog and ada has a cat .", "ada"),
    ("what was great ?", "the film was great and the acting was superb .", "the film"),
    ("what was superb ?", "the film was great and the acting was superb .", "the acting"),
]
# a context longer than one window: the answer ("london") is past the first window's end
LONG = (
    "where does bob live ?",
    "the film was great and the acting was superb , i loved it again and again . bob lives in london .",
    "london",
)


def _row(question: str, context: str, answer: str) -> dict:
    return {"question": question, "context": context,
            "answers": {"text": [answer], "answer_start": [context.index(answer)]}}  # fmt: skip


def _splits() -> datasets.DatasetDict:
    train = [_row(*p) for p in PAIRS]
    test = [_row(*p) for p in [*PAIRS[:4], LONG]]
    return datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(train), "validation": datasets.Dataset.from_list(test)}
    )


@pytest.fixture(scope="module")
def fast_tok() -> transformers.PreTrainedTokenizerBase:
    tok = transformers.BertTokenizer(vocab={t: i for i, t in enumerate(QA_VOCAB)})
    tok.model_max_length = 64
    assert tok.is_fast and tok.tokenize("who wrote the book ?") == ["who", "wrote", "the", "book", "?"]
    return tok


def _qa_model(seed: int = 0) -> transformers.PreTrainedModel:
    torch.manual_seed(seed)
    return transformers.AutoModelForQuestionAnswering.from_config(model_config("bert", 2)).eval()


def _features(tok, rows: list[tuple[str, str, str]]) -> dict[str, torch.Tensor]:
    """A padded batch of the pairs' windows with their answer positions (one window each: short contexts)."""
    ds = datasets.Dataset.from_list([_row(*r) for r in rows])
    windows = tokenize_dataset(ds, tok, max_length=MAX_LENGTH, num_virtual_tokens=N)
    assert len(windows) == len(rows)
    keys = ("input_ids", "token_type_ids", "attention_mask", "start_positions", "end_positions")
    return family_for(Task("question-answering")).collator(tok)([{k: w[k] for k in keys} for w in windows])


def _spliced(model, prompt: torch.Tensor, batch: dict, at: int) -> dict:
    """The bare model's inputs with ``prompt`` (N, E) spliced in by hand before position ``at``."""
    ids, mask, tt = batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
    b, n = ids.shape[0], prompt.shape[0]
    embeds = model.get_input_embeddings()(ids)  # (B, T, E)
    segment = tt[:, :1].expand(b, n) if at == 0 else tt[:, at - 1 : at].expand(b, n)
    return {
        "inputs_embeds": torch.cat([embeds[:, :at], prompt.expand(b, -1, -1), embeds[:, at:]], 1),
        "attention_mask": torch.cat([mask[:, :at], torch.ones(b, n, dtype=mask.dtype), mask[:, at:]], 1),
        "token_type_ids": torch.cat([tt[:, :at], segment, tt[:, at:]], 1),
    }


# ---------------------------------------------------------------- the task and the data


def test_task_knows_question_answering():
    task = Task("question_answering")
    assert task.type is TaskType.QUESTION_ANSWERING and task.is_question_answering and not task.is_token_level
    assert (
        Task("qa") == task
        and task.to_dict() == {"type": "question-answering"}
        and Task.from_dict(task.to_dict()) == task
    )
    assert task.metric_names == ("exact_match", "f1") and task.best_metric == "f1" and task.greater_is_better
    assert task.auto_model_class is transformers.AutoModelForQuestionAnswering
    assert task.num_labels(None) == 2  # a start and an end logit per token
    assert Task.from_problem_type("single_label_classification", 2).type is TaskType.CLASSIFICATION


def test_load_data_reads_squad_rows_and_checks_every_answer():
    data = load_data(_splits(), task="question-answering")
    assert data.task == Task("question-answering") and data.eval_split == "validation" and not data.is_pair
    assert data.train.column_names == ["question", "context", "answers"] and len(data.eval) == 5
    assert data.label_names == ["start", "end"] and data.model_kwargs()["num_labels"] == 2
    row = data.train[1]
    assert row["answers"] == {"text": ["london"], "answer_start": [13]} and row["context"][13:19] == "london"

    # other column names make it question answering by themselves; several answers and none are kept
    frame = datasets.Dataset.from_dict({
        "q": ["who ?", "where ?"], "passage": ["ada met bob", "nowhere"],
        "gold": [{"text": ["ada", "ada"], "answer_start": [0, 0]}, {"text": [], "answer_start": []}],
    })  # fmt: skip
    data = load_data(
        frame, question_column="q", context_column="passage", answers_column="gold", eval_split=None
    )
    assert data.task.is_question_answering and data.train[1]["answers"] == {"text": [], "answer_start": []}


@pytest.mark.parametrize(
    ("answers", "kwargs", "match"),
    [
        ({"text": ["bob"], "answer_start": [3]}, {}, r"row 0: answer 'bob' at answer_start=3 does not match the context there \(' me'\)"),
        ({"text": ["bob"]}, {}, "are not {'text'"),
        ({"text": ["bob", "ada"], "answer_start": [8]}, {}, "two lists of equal length"),
        ({"text": [""], "answer_start": [0]}, {}, "answer text '' is empty"),
        ({"text": ["bob"], "answer_start": [8]}, {"task": "regression", "question_column": "question"}, "are for question answering"),
        ({"text": ["bob"], "answer_start": [8]}, {"text_pair_column": "context"}, "takes no text_pair_column"),
    ],
)  # fmt: skip
def test_load_data_refuses_answers_that_do_not_fit(answers, kwargs, match):
    ds = datasets.Dataset.from_list([{"question": "who ?", "context": "ada met bob", "answers": answers}])
    with pytest.raises(ValueError, match=match):
        load_data(ds, **{"task": "question-answering", "eval_split": None, **kwargs})


# ---------------------------------------------------------------- windows


def test_long_context_is_cut_into_windows_and_the_answer_found_in_the_second(fast_tok):
    question, context, answer = LONG
    ds = datasets.Dataset.from_list([_row(*PAIRS[0]), _row(*LONG)])
    windows = tokenize_dataset(ds, fast_tok, max_length=MAX_LENGTH, num_virtual_tokens=N, stride=3)
    # 22 context tokens, 20 per window (28 - [CLS] [SEP] [SEP] - 5 question tokens), 3 shared: 2 windows
    assert windows["example_index"] == [0, 1, 1]  # the short pair fits one window
    assert max(windows["length"]) == MAX_LENGTH - N  # room left for the prompt
    long = windows.select(range(1, 3))
    found = [i for i, s in enumerate(long["start_positions"]) if s != 0]
    assert found == [1]  # in the second window, not the first: that one points at [CLS]
    assert long[0]["start_positions"] == long[0]["end_positions"] == 0
    for window in long.select(found):
        offsets = window["offset_mapping"]
        s, e = window["start_positions"], window["end_positions"]
        assert context[offsets[s][0] : offsets[e][1]] == answer  # the exact substring
        assert fast_tok.convert_ids_to_tokens(window["input_ids"][s]) == answer
    for a, b in zip(long["offset_mapping"], long["offset_mapping"][1:]):  # consecutive windows share 3 tokens
        shared = [o for o in a if o is not None][-3:]
        assert [o for o in b if o is not None][:3] == shared
    ids, offsets = windows[0]["input_ids"], windows[0]["offset_mapping"]
    assert (
        offsets[0] is None and fast_tok.convert_ids_to_tokens(ids[0]) == "[CLS]"
    )  # only context has offsets
    assert [fast_tok.decode([i]) for i, o in zip(ids, offsets) if o is not None] == PAIRS[0][1].split()


def test_answer_spans_and_refusals(fast_tok):
    offsets = [None, None, (0, 3), (4, 9), (10, 14), None]
    assert answer_token_span(offsets, 4, 14, 0) == (3, 4)
    assert answer_token_span(offsets, 5, 8, 0) == (3, 3)  # inside one token: that token
    assert answer_token_span(offsets, 10, 20, 0) == (0, 0)  # runs past the window: not here
    assert null_position([5, 2, 7], 2) == 1 and null_position([5, 7], 2) == 0
    enc = encode_windows(fast_tok, ["who ?"], ["ada met bob"], room=16)
    assert context_offsets(enc, 0) == [None, None, None, None, (0, 3), (4, 7), (8, 11), None]
    long = "who who who who who who who who ?"
    with pytest.raises(ValueError, match=r"question 0 has 9 tokens.*must be more than the stride \(4\)"):
        encode_windows(fast_tok, [long], ["ada met bob in paris with his dog ."], room=16, stride=4)
    assert len(encode_windows(fast_tok, [long], ["ada met bob"], room=16, stride=4)["input_ids"]) == 1  # fits
    with pytest.raises(ValueError, match="needs a fast tokenizer"):
        encode_windows(transformers.ByT5Tokenizer(), ["who ?"], ["ada"], room=16)
    left = transformers.BertTokenizer(vocab={t: i for i, t in enumerate(QA_VOCAB)}, padding_side="left")
    with pytest.raises(ValueError, match="padding_side = 'right'"):
        encode_windows(left, ["who ?"], ["ada"], room=16)


def test_collators_pad_windows_and_padding_enters_the_models_loss(fast_tok):
    """Dynamic padding (the task's collator) or fixed-size windows with the default collator: the same logits.

    transformers' QA heads put every position of the padded window into their softmax, padding
    included, so the loss (not the logits) depends on how far a window was padded.
    """
    model = _qa_model()
    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=N), tokenizer=fast_tok)
    dynamic = _features(fast_tok, PAIRS[:3])
    assert type(family_for(wrapper.task).collator(fast_tok)).__name__ == "DataCollatorWithPadding"
    ds = datasets.Dataset.from_list([_row(*p) for p in PAIRS[:3]])
    windows = tokenize_dataset(ds, fast_tok, max_length=MAX_LENGTH, num_virtual_tokens=N)
    room = MAX_LENGTH - N
    fixed = transformers.default_data_collator([
        {**{k: w[k] + [0] * (room - len(w[k])) for k in ("input_ids", "token_type_ids", "attention_mask")},
         "start_positions": w["start_positions"], "end_positions": w["end_positions"]} for w in windows
    ])  # fmt: skip
    assert fixed["input_ids"].shape == (3, room) and torch.equal(
        fixed["start_positions"], dynamic["start_positions"]
    )
    with torch.no_grad():
        a, b = wrapper(**fixed), wrapper(**dynamic)
    for key in ("start_logits", "end_logits"):
        for row, length in enumerate(dynamic["attention_mask"].sum(1).tolist()):
            assert torch.allclose(a[key][row, :length], b[key][row, :length], atol=1e-5)
    assert not torch.allclose(a.loss, b.loss)  # more padding, more positions in the softmax


# ---------------------------------------------------------------- the wrapper: logits and labels


@pytest.mark.parametrize("placement", ["after_cls", "prepend"])
def test_start_end_logits_and_loss_equal_the_bare_model_with_the_prompt_spliced_in(fast_tok, placement):
    model = _qa_model()
    wrapper = SoftPromptWrapper(
        model, SoftPromptConfig(num_virtual_tokens=N, placement=placement), tokenizer=fast_tok
    )
    bare_arithmetic(wrapper)  # compared bit for bit below
    assert wrapper.task == Task("question-answering")
    batch = _features(fast_tok, PAIRS[:4])
    batch["start_positions"][1] = batch["end_positions"][1] = 0  # one window "without" its answer: [CLS]
    at = 1 if placement == "after_cls" else 0
    spliced = _spliced(model, wrapper.prompts["default"].prompt, batch, at)
    # the labels moved with their tokens: past the prompt unless before the insertion point
    starts = torch.where(
        batch["start_positions"] >= at, batch["start_positions"] + N, batch["start_positions"]
    )
    ends = torch.where(batch["end_positions"] >= at, batch["end_positions"] + N, batch["end_positions"])
    with torch.no_grad():
        out = wrapper(**batch)
        ref = model(**spliced, start_positions=starts, end_positions=ends)
    for key in ("start_logits", "end_logits"):
        full = ref[key]  # (B, T + N)
        trimmed = torch.cat([full[:, :at], full[:, at + N :]], dim=1)  # the virtual positions removed
        assert torch.equal(out[key], trimmed) and out[key].shape == batch["input_ids"].shape
    assert torch.equal(out.loss, ref.loss)
    # the gold start token, read in the user's own positions, is the answer's first token
    row = 0
    assert (
        fast_tok.convert_ids_to_tokens(int(batch["input_ids"][row, batch["start_positions"][row]])) == "ada"
    )


def test_answer_positions_refuse_what_would_train_the_wrong_tokens():
    embeds = {"inputs_embeds": torch.zeros(2, 6, 4)}
    kwargs = {"start_positions": torch.tensor([[0], [2]]), "end_positions": torch.tensor([0, 3]), "x": 1}
    moved = answer_positions(kwargs, at=1, n=3, length=6, fitted=embeds)
    assert moved["start_positions"].tolist() == [0, 5] and moved["end_positions"].tolist() == [0, 6]
    assert kwargs == {"x": 1}  # popped: the model gets them from the spliced inputs
    assert answer_positions({"x": 1}, at=1, n=3, length=6, fitted=embeds) == {}
    with pytest.raises(ValueError, match="without its partner"):
        answer_positions({"start_positions": torch.tensor([1])}, at=1, n=3, length=6, fitted=embeds)
    with pytest.raises(ValueError, match=r"\[-100\] lie outside the 6 input tokens"):
        answer_positions({"start_positions": torch.tensor([-100, 1]), "end_positions": torch.tensor([1, 1])},
                         at=1, n=3, length=6, fitted=embeds)  # fmt: skip
    with pytest.raises(ValueError, match="cut to 4 to fit"):
        answer_positions({"start_positions": torch.tensor([1]), "end_positions": torch.tensor([1])},
                         at=1, n=3, length=6, fitted={"inputs_embeds": torch.zeros(1, 4, 4)})  # fmt: skip


def test_mixed_prompt_batches_merge_start_end_logits_and_the_loss(fast_tok, tmp_path):
    model = _qa_model()
    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=N, seed=1), tokenizer=fast_tok)
    second = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=N, seed=2), tokenizer=fast_tok)
    with torch.no_grad():
        second.prompts["default"].heads["qa_outputs"].weight.mul_(-2.0)  # another prompt with its own head
    wrapper.load_prompt(second.save_prompt(tmp_path / "other.safetensors"))
    batch = _features(fast_tok, PAIRS[:5])
    names = ["default", "other", "other", "default", "other"]
    with torch.no_grad():
        mixed = wrapper(**batch, prompt_names=names)
        parts = {}
        for name in ("default", "other"):
            rows = [i for i, n in enumerate(names) if n == name]
            part = {k: v[rows] for k, v in batch.items()}
            parts[name] = (rows, wrapper(**part, prompt_names=[name] * len(rows)))
    for rows, out in parts.values():
        for key in ("start_logits", "end_logits"):
            assert torch.allclose(mixed[key][rows], out[key][:, : mixed[key].shape[1]], atol=1e-6)
    expected = sum(out.loss * len(rows) for rows, out in parts.values()) / len(names)  # every row counts
    assert torch.allclose(mixed.loss, expected, atol=1e-6)
    pairs = [p[:2] for p in PAIRS]
    assert wrapper.predict(pairs, prompt="other") == second.predict(pairs)
    assert wrapper.predict(pairs) != second.predict(pairs)  # the two prompts answer differently


# ---------------------------------------------------------------- metrics and decoding


def test_squad_scores_match_hand_computed_values():
    assert normalize_answer("  The Eiffel-Tower, in PARIS! ") == "eiffeltower in paris"
    assert exact_match("a dog", "Dog.") == 1.0 and exact_match("his dog", "dog") == 0.0
    assert answer_f1("his dog", "dog") == pytest.approx(2 / 3)  # precision 1/2, recall 1
    assert answer_f1("dog dog cat", "dog cat cat") == pytest.approx(
        2 / 3
    )  # overlap counts multiplicity: 2 of 3
    assert answer_f1("", "dog") == 0.0 and answer_f1("the", "a") == 1.0  # both normalise to nothing
    scores = squad_scores(
        ["London", "his dog", "paris", ""], [["london", "London town"], ["dog"], ["ada"], []]
    )  # EM 1, 0, 0, 1 (unanswerable, empty); F1 1, 2/3, 0, 1
    assert scores == pytest.approx({"exact_match": 0.5, "f1": (1 + 2 / 3 + 0 + 1) / 4})
    answers = [Answer("London", 13, 19, 0.5), Answer("his dog", 25, 32, 0.2)]
    got = compute_task_metrics(Task("question-answering"), answers, [["london"], ["dog"]])
    assert got == pytest.approx({"exact_match": 0.5, "f1": (1 + 2 / 3) / 2})
    with pytest.raises(ValueError, match="2 predictions for 1 questions"):
        squad_scores(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="eval_dataset= .* and tokenizer="):
        build_compute_metrics(task=Task("question-answering"))


def test_best_span_is_the_pipelines_decoding():
    """transformers keeps its question-answering pipeline's decoding in document_question_answering."""
    from transformers.pipelines.document_question_answering import select_starts_ends

    gen = torch.Generator().manual_seed(0)
    for trial in range(20):
        t = 16
        start, end = torch.randn(t, generator=gen) * 3, torch.randn(t, generator=gen) * 3
        context = torch.zeros(t, dtype=torch.bool)
        context[5 + trial % 3 : t - 1] = True  # [CLS] question [SEP] context [SEP]
        p_mask = (~context).long().numpy()
        p_mask[0] = 0  # the pipeline lets [CLS] into the softmax
        for max_len in (1, 3, 15):
            starts, ends, scores, _ = select_starts_ends(
                start[None].numpy(), end[None].numpy(), p_mask[None], np.ones((1, t), dtype=np.int64), max_answer_len=max_len
            )  # fmt: skip
            s, e, score = best_span(start, end, context, null=0, max_answer_length=max_len)
            assert (s, e) == (int(starts[0]), int(ends[0])) and score == pytest.approx(
                float(scores[0]), rel=1e-5
            )
    assert best_span(start, end, torch.zeros(t, dtype=torch.bool), null=0) is None


def test_windows_combine_into_the_best_answer_with_its_character_span():
    context = "bob lives in london with his dog"
    first = [None, (0, 3), (4, 9), (10, 12), None]  # "bob lives in"
    second = [None, (10, 12), (13, 19), (20, 24), None]  # "in london with"
    low = torch.tensor(
        [[0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0], [9.0, 9.0]]
    )  # flat: 1/3 * 1/3 at best
    high = torch.tensor([[0.0, 0.0], [0.0, 0.0], [6.0, 6.0], [0.0, 0.0], [0.0, 0.0]])  # "london", nearly sure
    (answer,) = answers_from_windows([(0, low, first, 0), (0, high, second, 0)], [context])
    assert (answer.text, answer.start, answer.end) == ("london", 13, 19) and context[13:19] == "london"
    assert answer.score > 0.9
    assert answers_from_windows([(0, high, [None] * 5, 0)], ["x"]) == [Answer("", 0, 0, 0.0)]


# ---------------------------------------------------------------- training, evaluation, files, predictions


@pytest.fixture(scope="module")
def trained(fast_tok, tmp_path_factory):
    """A prompt (and head) trained a few epochs on the ten pairs; the loss on them before and after."""
    torch.manual_seed(0)
    data = load_data(_splits(), task="question-answering")
    model = data.task.auto_model_class.from_config(model_config("bert", 2)).eval()
    wrapper = SoftPromptWrapper(model, SoftPromptConfig(num_virtual_tokens=N), tokenizer=fast_tok)
    train = tokenize_dataset(data.train, fast_tok, max_length=MAX_LENGTH, num_virtual_tokens=N)
    test = tokenize_dataset(data.eval, fast_tok, max_length=MAX_LENGTH, num_virtual_tokens=N)
    batch = _features(fast_tok, PAIRS)

    def loss() -> float:
        with torch.no_grad():
            return float(wrapper(**batch).loss)

    before = loss()
    result = train_prompt(
        wrapper, train, test, output_dir=tmp_path_factory.mktemp("qa"), num_train_epochs=8, learning_rate=0.05,
        per_device_train_batch_size=4, disable_tqdm=True, logging_strategy="epoch", warmup_steps=0,
    )  # fmt: skip
    return {
        "data": data,
        "wrapper": wrapper,
        "result": result,
        "test": test,
        "before": before,
        "after": loss(),
    }


def test_train_prompt_lowers_the_loss_and_scores_answers(trained, fast_tok):
    result, data, wrapper = trained["result"], trained["data"], trained["wrapper"]
    assert trained["after"] < 0.8 * trained["before"]
    assert {"eval_exact_match", "eval_f1", "eval_loss"} <= set(result.eval_metrics)
    assert result.best_checkpoint is not None  # kept by eval_f1
    scores = evaluate_model(wrapper, fast_tok, data.eval, max_length=MAX_LENGTH)
    for m in ("exact_match", "f1"):  # evaluate_model answers as Trainer's evaluation did
        assert scores[f"eval_{m}"] == pytest.approx(result.eval_metrics[f"eval_{m}"], abs=1e-9)
    answers = wrapper.predict([r[:2] for r in [*PAIRS[:4], LONG]], max_length=MAX_LENGTH)
    expected = squad_scores([a.text for a in answers], [[r[2]] for r in [*PAIRS[:4], LONG]])
    assert scores["eval_exact_match"] == pytest.approx(expected["exact_match"])
    assert scores["eval_samples"] == 5


def test_predict_gives_answers_that_are_exact_substrings(trained, fast_tok):
    wrapper = trained["wrapper"]
    pairs = [r[:2] for r in PAIRS] + [LONG[:2]]
    answers = wrapper.predict(pairs, max_length=MAX_LENGTH)
    assert len(answers) == len(pairs) and all(isinstance(a, Answer) for a in answers)
    for (_question, context), answer in zip(pairs, answers):
        assert answer.text == context[answer.start : answer.end] and answer.text and 0 < answer.score <= 1
    assert predict(wrapper, fast_tok, pairs, max_length=MAX_LENGTH) == answers  # softprompt.predict
    other = predict_answers(wrapper, fast_tok, pairs, max_length=MAX_LENGTH, batch_size=3)  # other padding
    assert [(a.text, a.start, a.end) for a in other] == [(a.text, a.start, a.end) for a in answers]
    assert [a.score for a in other] == pytest.approx([a.score for a in answers], rel=1e-5)
    assert wrapper.predict([]) == []
    with pytest.raises(TypeError, match="takes \\(question, context\\) pairs"):
        wrapper.predict(["who wrote the book ?"])
    with pytest.raises(TypeError, match="question-answering options"):
        SoftPromptWrapper(transformers.AutoModelForSequenceClassification.from_config(model_config("bert")),
                          tokenizer=fast_tok).predict(["a film"], stride=2)  # fmt: skip


def test_predict_decodes_each_window_as_the_pipeline_did(trained, fast_tok):
    """The same answers and scores as transformers' question-answering decoding run on the wrapper's logits."""
    from transformers.pipelines.document_question_answering import select_starts_ends

    wrapper = trained["wrapper"]
    question, context, _ = LONG
    room = wrapper.max_input_length(MAX_LENGTH)
    enc = encode_windows(fast_tok, [question], [context], room, stride=3)
    assert len(enc["input_ids"]) > 1  # several windows
    best = None
    for w in range(len(enc["input_ids"])):
        with torch.no_grad():
            out = wrapper(
                **{k: torch.tensor([enc[k][w]]) for k in ("input_ids", "token_type_ids", "attention_mask")}
            )
        offsets = context_offsets(enc, w)
        p_mask = np.array([[0 if (o is not None or k == 0) else 1 for k, o in enumerate(offsets)]])
        starts, ends, scores, _ = select_starts_ends(
            out.start_logits.numpy(), out.end_logits.numpy(), p_mask, np.ones_like(p_mask), max_answer_len=30
        )
        candidate = (float(scores[0]), offsets[int(starts[0])][0], offsets[int(ends[0])][1])
        best = (
            candidate if best is None or candidate[0] > best[0] else best
        )  # sorted by score, first wins ties
    (answer,) = wrapper.predict([(question, context)], max_length=MAX_LENGTH, stride=3)
    assert (answer.start, answer.end) == best[1:] and answer.score == pytest.approx(best[0], rel=1e-5)


def test_transformers_question_answering_pipeline(trained, fast_tok):
    """transformers 5 removed the question-answering pipeline; where it exists it must agree with predict."""
    wrapper = trained["wrapper"]
    try:
        pipe = transformers.pipeline("question-answering", model=wrapper, tokenizer=fast_tok)
    except KeyError as exc:
        assert "has been removed" in str(exc)
        pytest.skip(f"transformers {transformers.__version__} has no question-answering pipeline: {exc}")
    room = wrapper.max_input_length(MAX_LENGTH)
    for question, context, _ in [*PAIRS[:3], LONG]:
        got = pipe(question=question, context=context, max_seq_len=room, doc_stride=3, max_answer_len=30)
        (mine,) = wrapper.predict([(question, context)], max_length=MAX_LENGTH, stride=3)
        assert (got["start"], got["end"], got["answer"]) == (mine.start, mine.end, mine.text)
        assert got["score"] == pytest.approx(mine.score, rel=1e-5)


def test_prompt_file_round_trip_keeps_the_task_and_the_answers(trained, fast_tok):
    wrapper, path = trained["wrapper"], trained["result"].prompt_path
    pf = read_prompt_file(path)
    assert pf.task == Task("question-answering") and pf.num_labels == 2
    assert sorted(pf.head) == ["qa_outputs.bias", "qa_outputs.weight"]
    fresh = _qa_model(seed=0)
    torch.nn.init.normal_(fresh.qa_outputs.weight)  # another head: the file brings its own
    reloaded = SoftPromptWrapper.from_prompt(fresh, path, tokenizer=fast_tok)
    assert reloaded.task == wrapper.task
    pairs = [r[:2] for r in PAIRS] + [LONG[:2]]
    assert reloaded.predict(pairs, max_length=MAX_LENGTH) == wrapper.predict(pairs, max_length=MAX_LENGTH)
    token = transformers.AutoModelForTokenClassification.from_config(model_config("bert", 2))
    with pytest.raises(ValueError, match="trained for 'question-answering'.*AutoModelForQuestionAnswering"):
        SoftPromptWrapper.from_prompt(token, path, tokenizer=fast_tok)


def test_training_checks_positions_and_arguments(fast_tok, tmp_path):
    ds = datasets.Dataset.from_dict({"input_ids": [[2, 9, 3]], "start_positions": [2], "end_positions": [1]})
    with pytest.raises(ValueError, match="row 0 has start_positions=2, end_positions=1 for 3 tokens"):
        check_answer_positions(ds, "train_dataset")
    with pytest.raises(ValueError, match="lacks \\['end_positions', 'start_positions'\\]"):
        check_answer_positions(datasets.Dataset.from_dict({"input_ids": [[2, 3]], "labels": [0]}), "x")
    assert family_for(Task("question-answering")).training_args(Task("question-answering")) == {
        "label_names": ["start_positions", "end_positions"], "include_for_metrics": ["inputs"]
    }  # fmt: skip
    assert family_for(Task()).training_args(Task()) == {}
    wrapper = SoftPromptWrapper(_qa_model(), SoftPromptConfig(num_virtual_tokens=N), tokenizer=fast_tok)
    train = tokenize_dataset(datasets.Dataset.from_list([_row(*p) for p in PAIRS[:2]]), fast_tok,
                             max_length=MAX_LENGTH, num_virtual_tokens=N)  # fmt: skip
    args = transformers.TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    with pytest.raises(ValueError, match="needs TrainingArguments\\(label_names="):
        train_prompt(wrapper, train, output_dir=tmp_path, training_args=args)


def test_a_bare_question_answering_model_predicts_and_scores_the_same_way(fast_tok):
    """softprompt.predict / evaluate_model on a *ForQuestionAnswering model (no prompt): its own windows' logits."""
    model = _qa_model()
    pairs = [r[:2] for r in PAIRS[:3]] + [LONG[:2]]
    answers = predict(model, fast_tok, pairs, max_length=MAX_LENGTH)
    enc = encode_windows(
        fast_tok, [q for q, _ in pairs], [c for _, c in pairs], MAX_LENGTH
    )  # no prompt: all room
    windows = []
    for w, pair in enumerate(enc["overflow_to_sample_mapping"]):
        with torch.no_grad():
            out = model(
                **{k: torch.tensor([enc[k][w]]) for k in ("input_ids", "token_type_ids", "attention_mask")}
            )
        logits = torch.stack([out.start_logits[0], out.end_logits[0]], -1)  # (T, 2)
        windows.append((pair, logits, context_offsets(enc, w), 0))
    expected = answers_from_windows(windows, [c for _, c in pairs])
    assert [(a.text, a.start, a.end) for a in answers] == [(a.text, a.start, a.end) for a in expected]
    assert [a.score for a in answers] == pytest.approx([a.score for a in expected], rel=1e-5)
    rows = datasets.Dataset.from_list([_row(*r) for r in [*PAIRS[:3], LONG]])
    scores = evaluate_model(model, fast_tok, rows, max_length=MAX_LENGTH)
    assert scores["eval_f1"] == pytest.approx(
        squad_scores([a.text for a in answers], [[r[2]] for r in [*PAIRS[:3], LONG]])["f1"]
    )


def test_what_question_answering_refuses(fast_tok):
    wrapper = SoftPromptWrapper(_qa_model(), SoftPromptConfig(num_virtual_tokens=N), tokenizer=fast_tok)
    pairs = [PAIRS[0][:2]]
    with pytest.raises(ValueError, match="single-label classification"):
        wrapper.calibrate(pairs, [1])
    with pytest.raises(ValueError, match="only single-label classification prompts can be ensembled"):
        wrapper.predict(pairs, prompts=["default"])
    with pytest.raises(ValueError, match="max_answer_length must be a positive int"):
        wrapper.predict(pairs, max_answer_length=0)
    with pytest.raises(ValueError, match="stride must be an int >= 0"):
        wrapper.predict(pairs, stride=-1)
    with pytest.raises(ValueError, match="lacks columns \\['answers', 'context', 'question'\\]"):
        evaluate_model(wrapper, fast_tok, datasets.Dataset.from_dict({"text": ["a"], "label": [0]}))


def test_finetuning_shares_the_question_answering_pipeline(fast_tok, tmp_path):
    """finetune trains a whole QA model with the same windows and metrics; load_finetuned rebuilds it."""
    from softprompt.finetune import finetune, load_finetuned

    torch.manual_seed(0)
    data = load_data(_splits(), task="question-answering")
    model = data.task.auto_model_class.from_config(model_config("bert", 2))
    train = tokenize_dataset(data.train, fast_tok, max_length=MAX_LENGTH)
    test = tokenize_dataset(data.eval, fast_tok, max_length=MAX_LENGTH)
    batch = _features(fast_tok, PAIRS)
    with torch.no_grad():
        before = float(model.eval()(**batch).loss)
    result = finetune(model, fast_tok, train, test, output_dir=tmp_path / "ft", num_train_epochs=8, learning_rate=3e-3,
                      per_device_train_batch_size=4, disable_tqdm=True)  # fmt: skip
    with torch.no_grad():
        after = float(model.eval()(**batch).loss)
    assert after < 0.8 * before
    assert {"eval_exact_match", "eval_f1"} <= set(result.eval_metrics)
    again, tok = load_finetuned(tmp_path / "ft")
    assert type(again).__name__ == "BertForQuestionAnswering"
    scores = evaluate_model(again, tok, data.eval, max_length=MAX_LENGTH)
    assert scores["eval_f1"] == pytest.approx(result.eval_metrics["eval_f1"], abs=1e-9)
