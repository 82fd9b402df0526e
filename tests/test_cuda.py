"""On a CUDA GPU (skipped elsewhere): training, scoring and a whole run work where the model is on the GPU.

CI has no GPU; these run when one is lent (``pytest tests/test_cuda.py`` on that machine).
"""

import json

import pytest
import torch

from softprompt import RunConfig, evaluate_model, predict_logits, run_prompt_tuning
from tests.test_trainer import learnable_wrapper, toy_sentiment

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_scoring_on_the_gpu_returns_host_tensors_equal_to_the_cpu(tokenizer):
    wrapper = learnable_wrapper(tokenizer)
    texts = toy_sentiment(8)["text"]
    on_cpu = predict_logits(wrapper, tokenizer, texts)
    on_gpu = predict_logits(wrapper.to("cuda"), tokenizer, texts)
    assert on_gpu.device.type == "cpu"
    torch.testing.assert_close(on_gpu, on_cpu, atol=1e-4, rtol=1e-4)
    data = toy_sentiment(8)
    assert 0 <= evaluate_model(wrapper, tokenizer, data)["eval_accuracy"] <= 1


def test_a_whole_run_on_the_gpu(assets, tmp_path):
    model_dir, data_dir = assets
    cfg = RunConfig(model=str(model_dir), data=str(data_dir), train_size=32, eval_size=16, epochs=1, max_length=32,
                    num_virtual_tokens=4, label_names=["neg", "pos"], output_dir=str(tmp_path / "run"))  # fmt: skip
    results = run_prompt_tuning(cfg)
    assert results["versions"]["device"].startswith("cuda")
    assert results["reloaded_eval_metrics"]["eval_accuracy"] == results["eval_metrics"]["eval_accuracy"]
    assert (
        json.loads((tmp_path / "run" / "results.json").read_text())["eval_accuracy"]
        == results["eval_accuracy"]
    )
