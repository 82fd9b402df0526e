"""The wrapper patches nothing at call time: threads with different prompts, torch.compile, transformers.pipeline."""

from __future__ import annotations

import shutil
import threading

import pytest
import torch
import transformers

from softprompt import SoftPromptConfig, SoftPromptWrapper, predict_logits
from tests.conftest import make_model, model_config

TEXTS = [
    "great film",
    "dull",
    "the worst movie i ever watch really",
    "superb acting , great plot",
    "bad",
    "a",
]


def _two_prompt_wrapper(tokenizer, tmp_path, *, deep: bool = False) -> SoftPromptWrapper:
    model = make_model("bert")
    wrapper = SoftPromptWrapper(
        model, SoftPromptConfig(num_virtual_tokens=4, seed=1, deep=deep), tokenizer=tokenizer
    )
    other = SoftPromptWrapper(
        model, SoftPromptConfig(num_virtual_tokens=4, seed=2, deep=deep), tokenizer=tokenizer
    )
    with torch.no_grad():  # heads that disagree, so a prompt that used the other's head would show
        other.prompts["default"].head_params()["classifier.weight"].normal_(0, 1)
        wrapper.prompts["default"].head_params()["classifier.weight"].normal_(0, 1)
    wrapper.load_prompt(other.save_prompt(tmp_path / "b.safetensors"))
    return wrapper.eval()


def test_a_running_predict_keeps_its_prompt_when_another_thread_switches(tokenizer, tmp_path):
    """``set_active_prompt`` elsewhere mid-call (simulated deterministically: from inside the first batch)
    does not switch a running ``predict`` to another prompt between its batches."""
    wrapper = _two_prompt_wrapper(tokenizer, tmp_path, deep=False)
    expected = wrapper.predict(TEXTS, batch_size=1)  # the active prompt: "default"
    assert expected != wrapper.predict(TEXTS, prompt="b", batch_size=1)

    def switch(module, args, kwargs):
        wrapper.set_active_prompt("b")  # another thread, between two batches of the running call

    handle = wrapper.model.base_model.register_forward_pre_hook(switch, with_kwargs=True)
    try:
        assert wrapper.predict(TEXTS, batch_size=1) == expected
    finally:
        handle.remove()
    assert wrapper.active_prompt == "b"


@pytest.mark.parametrize("churn", ["remove", "replace"])
def test_a_running_predict_keeps_its_prompt_when_another_thread_removes_or_replaces_it(
    tokenizer, tmp_path, churn
):
    """Another thread's remove_prompt (after switching the active prompt) or load_prompt(replace=True) waits for
    the running call, which finishes with the prompt it started with (once: KeyError in 59 of 984 calls)."""
    import threading

    wrapper = _two_prompt_wrapper(tokenizer, tmp_path, deep=False)
    expected = wrapper.predict(TEXTS, batch_size=1)
    other = tmp_path / "b.safetensors"  # written by _two_prompt_wrapper
    errors: list[BaseException] = []

    def churner() -> None:
        try:
            if churn == "remove":
                wrapper.set_active_prompt("b")
                wrapper.remove_prompt("default")
            else:
                wrapper.load_prompt(other, "default", replace=True)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    started: list[threading.Thread] = []

    def race(module, args, kwargs):
        if not started:  # first batch: the other thread acts now, and is given time to finish if it can
            started.append(threading.Thread(target=churner))
            started[0].start()
            started[0].join(timeout=0.5)

    handle = wrapper.model.base_model.register_forward_pre_hook(race, with_kwargs=True)
    try:
        assert wrapper.predict(TEXTS, batch_size=1) == expected  # every row from the prompt it started with
    finally:
        handle.remove()
    started[0].join(timeout=30)
    assert not started[0].is_alive() and not errors
    if churn == "remove":
        assert "default" not in wrapper.prompts
    else:
        assert wrapper.predict(TEXTS, batch_size=1) == wrapper.predict(TEXTS, prompt="b", batch_size=1)


@pytest.mark.parametrize("deep", [False, True], ids=["input", "deep"])
def test_predict_from_threads_with_different_prompts(tokenizer, tmp_path, deep):
    wrapper = _two_prompt_wrapper(tokenizer, tmp_path, deep=deep)
    expected = {name: wrapper.predict(TEXTS, prompt=name) for name in ("default", "b")}
    assert expected["default"] != expected["b"]
    errors: list[BaseException] = []
    wrong: list[tuple[str, int]] = []

    def work(name: str) -> None:
        try:
            for i in range(15):
                got = wrapper.predict(TEXTS, prompt=name, batch_size=2 + i % 3)
                if [p.label for p in got] != [p.label for p in expected[name]] or any(
                    abs(g.confidence - e.confidence) > 1e-5 for g, e in zip(got, expected[name])
                ):
                    wrong.append((name, i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(name,)) for name in ("default", "b") * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert not wrong, wrong[:5]


def test_model_methods_are_never_reassigned(tokenizer, tmp_path):
    wrapper = _two_prompt_wrapper(tokenizer, tmp_path)
    batch = tokenizer(TEXTS, return_tensors="pt", padding=True)
    wrapper(**batch, prompt_names=["default", "b"] * 3)
    for module in wrapper.model.modules():
        assert "forward" not in vars(module)


def _compiler_available() -> str | None:
    if not hasattr(torch, "compile"):
        return "this torch has no torch.compile"
    if shutil.which("g++") is None and shutil.which("c++") is None:
        return "no C++ compiler for inductor's CPU kernels on this machine"
    return None


@pytest.mark.skipif(_compiler_available() is not None, reason=str(_compiler_available()))
def test_torch_compile_matches_eager(tokenizer, tmp_path):
    wrapper = _two_prompt_wrapper(tokenizer, tmp_path)
    batch = tokenizer(TEXTS, return_tensors="pt", padding=True)
    eager = wrapper(**batch).logits
    compiled = torch.compile(wrapper)
    torch._dynamo.reset()
    got = compiled(**batch).logits
    assert torch.allclose(got, eager, atol=1e-4)
    mixed = compiled(**batch, prompt_names=["default", "b"] * 3).logits
    assert torch.allclose(mixed, wrapper(**batch, prompt_names=["default", "b"] * 3).logits, atol=1e-4)


@pytest.mark.skipif(_compiler_available() is not None, reason=str(_compiler_available()))
@pytest.mark.parametrize("freezing", [False, True])
def test_predict_through_a_compiled_wrapper_matches_eager(tokenizer, tmp_path, freezing):
    """predict_logits opens the oneDNN mode around the compiled call: Dynamo must trace plain F.linear
    (inductor packs weights itself), not the mode's packed calls (which inductor cannot lower)."""
    import torch._inductor.config as inductor_config

    wrapper = _two_prompt_wrapper(tokenizer, tmp_path)
    eager = predict_logits(wrapper, tokenizer, TEXTS, batch_size=2)
    torch._dynamo.reset()
    with inductor_config.patch(freezing=freezing):
        compiled = torch.compile(wrapper, dynamic=True)
        got = predict_logits(compiled, tokenizer, TEXTS, batch_size=2)  # batches of different lengths
    torch._dynamo.reset()
    torch.testing.assert_close(got, eager, atol=1e-4, rtol=0)


def _model_for(problem_type: str, num_labels: int) -> transformers.PreTrainedModel:
    torch.manual_seed(0)
    config = model_config("bert", num_labels)
    config.problem_type = problem_type
    config.id2label = {i: f"c{i}" for i in range(num_labels)}
    config.label2id = {v: k for k, v in config.id2label.items()}
    return transformers.AutoModelForSequenceClassification.from_config(config).eval()


@pytest.mark.parametrize(
    ("problem_type", "num_labels"),
    [("single_label_classification", 3), ("multi_label_classification", 3), ("regression", 1)],
)
def test_text_classification_pipeline_agrees_with_predict(tokenizer, problem_type, num_labels):
    wrapper = SoftPromptWrapper(
        _model_for(problem_type, num_labels), SoftPromptConfig(num_virtual_tokens=4), tokenizer=tokenizer
    )
    assert wrapper.device == torch.device("cpu") and wrapper.dtype == torch.float32
    pipe = transformers.pipeline("text-classification", model=wrapper, tokenizer=tokenizer)
    preds = wrapper.predict(TEXTS)
    if problem_type == "single_label_classification":
        out = pipe(TEXTS)
        assert [o["label"] for o in out] == [p.label_name for p in preds]
        assert [o["score"] for o in out] == pytest.approx([p.confidence for p in preds], abs=1e-6)
        pair = pipe({"text": "great film", "text_pair": "very bad"})
        (mine,) = wrapper.predict([("great film", "very bad")])
        assert (pair["label"], pair["score"]) == (mine.label_name, pytest.approx(mine.confidence, abs=1e-6))
    elif problem_type == "multi_label_classification":
        out = pipe(TEXTS, top_k=None)
        for row, p in zip(out, preds):
            assert {o["label"]: o["score"] for o in row} == pytest.approx(p.scores, abs=1e-6)
    else:
        out = pipe(TEXTS, function_to_apply="none")
        assert [o["score"] for o in out] == pytest.approx([p.value for p in preds], abs=1e-5)
