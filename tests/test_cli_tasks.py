"""The command line beyond single-text classification: the Hub, token classification, question answering,
text-to-label. A run folder is a prompt folder; push it, then predict by repo id in a new process.

The Hub is the local stand-in of ``tests/hub_server.py`` (the real ``huggingface_hub`` client talks to it).
"""

import json
import os
import random
import subprocess
import sys

import pandas as pd
import pytest
import transformers
from huggingface_hub import constants

from softprompt import SoftPromptWrapper, read_prompt_file
from softprompt.cli import main
from tests.conftest import model_config
from tests.hub_server import serving
from tests.test_cli import REPO, _run_flags
from tests.test_token_classification import TAGS, TOKEN_VOCAB, _sentence


def _env(server, home) -> dict[str, str]:
    """A new process that reaches the stand-in as the Hub, online, with its cache under ``home``."""
    return {**os.environ, "HF_ENDPOINT": server.url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(home),
            "HF_HUB_CACHE": str(home / "hub")}  # fmt: skip


def test_a_run_folder_is_a_prompt_folder_pushed_and_used_by_repo_id(assets, tmp_path, monkeypatch, capsys):
    model_dir, data_dir = assets
    out = tmp_path / "pt"
    assert main(["train", *_run_flags(model_dir, data_dir, out, "--epochs", "1")]) == 0
    results = json.loads((out / "results.json").read_text())
    card = (out / "README.md").read_text()
    assert "library_name: softprompt" in card and f"{results['eval_accuracy']:.4f}"[:5] in card
    # the default placement (after [CLS]) is not PEFT's, so no PEFT files and the card says why
    assert not (out / "adapter_config.json").exists() and "PEFT" in card
    capsys.readouterr()

    # --prompt takes the run folder itself
    assert main(["predict", "--prompt", str(out), "--model", str(model_dir), "great film", "dull plot"]) == 0
    local = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    by_name = SoftPromptWrapper.from_pretrained(
        str(model_dir), out
    )  # the model class and labels from the file
    loaded = [p.to_dict() for p in by_name.predict(["great film", "dull plot"])]
    expected = [{k: v for k, v in row.items() if k != "text"} for row in local]
    assert [(p["label"], p["label_name"]) for p in loaded] == [
        (p["label"], p["label_name"]) for p in expected
    ]
    # the CLI ran with its own thread count: the same arithmetic up to float rounding
    assert [p["confidence"] for p in loaded] == pytest.approx([p["confidence"] for p in expected], abs=1e-6)

    home = tmp_path / "hf-home"
    with serving(monkeypatch, home) as server:
        assert main(["push", str(out), "--repo-id", "me/sentiment-prompt"]) == 0
        pushed = json.loads(capsys.readouterr().out)
        assert pushed["files"] == ["prompt.safetensors", "README.md"]  # no checkpoints, no results
        repo = server.repos["me/sentiment-prompt"]
        assert set(repo.commits[repo.refs["main"]]) - {".gitattributes"} == {
            "prompt.safetensors",
            "README.md",
        }
        # a new process predicts with the prompt by its repo id, through its own empty cache
        cmd = [sys.executable, "-m", "softprompt.cli", "predict", "--prompt", "me/sentiment-prompt", "--model",
               str(model_dir), "great film", "dull plot", "--threads", "1"]  # this process's threads: the same digits  # fmt: skip
        done = subprocess.run(cmd, cwd=REPO, env=_env(server, tmp_path / "other-home"), capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == local


def test_push_refuses_what_it_cannot_upload(assets, tmp_path, capsys):
    model_dir, data_dir = assets
    assert main(["push", str(tmp_path), "--repo-id", "me/x"]) == 2
    assert "has no prompt.safetensors" in capsys.readouterr().err
    assert main(["push", str(tmp_path / "nope"), "--repo-id", "me/x"]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_train_push_to_hub_uploads_the_scored_prompt_and_keeps_no_token(
    assets, tmp_path, monkeypatch, capsys
):
    model_dir, data_dir = assets
    out = tmp_path / "pt"
    flags = _run_flags(model_dir, data_dir, out, "--epochs", "1")
    with serving(monkeypatch, tmp_path / "hf-home") as server:
        assert (
            main(["train", *flags, "--push_to_hub", "--hub_model_id", "me/pushed", "--hub_token", "secret"])
            == 0
        )
        repo = server.repos["me/pushed"]
        assert (
            repo.commits[repo.refs["main"]]["prompt.safetensors"] == (out / "prompt.safetensors").read_bytes()
        )
    assert "hub" in json.loads((out / "results.json").read_text())
    for name in ("run_config.json", "results.json", "training_args.json"):
        assert "secret" not in (out / name).read_text(), name
    capsys.readouterr()
    # offline, or for fine-tuning: refused before any training
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # as outside the stand-in's test
    assert main(["train", *flags, "--overwrite", "--push_to_hub"]) == 2
    assert "HF_HUB_OFFLINE=1" in capsys.readouterr().err
    assert main(["finetune", *_run_flags(model_dir, data_dir, tmp_path / "ft"), "--push_to_hub"]) == 2
    assert "fine-tuning runs do not upload" in capsys.readouterr().err
    assert not (tmp_path / "ft" / "results.json").exists()
    assert main(["train", *_run_flags(model_dir, data_dir, tmp_path / "x"), "--hub_model_id", "me/y"]) == 2
    assert "without push_to_hub" in capsys.readouterr().err


@pytest.fixture
def token_assets(tmp_path):
    tok = transformers.BertTokenizer(vocab={t: i for i, t in enumerate(TOKEN_VOCAB)})
    tok.model_max_length = 64
    model = transformers.AutoModelForTokenClassification.from_config(model_config("bert", len(TAGS)))
    model_dir, data_dir = tmp_path / "tiny-bert", tmp_path / "ner"
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    data_dir.mkdir()
    rng = random.Random(0)
    for split, n in (("train", 48), ("test", 16)):
        rows = [dict(zip(("words", "tags"), _sentence(rng))) for _ in range(n)]
        pd.DataFrame(rows).to_json(data_dir / f"{split}.jsonl", orient="records", lines=True)
    return model_dir, data_dir


def test_token_classification_from_the_command_line(token_assets, tmp_path, capsys):
    model_dir, data_dir = token_assets
    out = tmp_path / "ner"
    flags = ["--model", str(model_dir), "--data", str(data_dir), "--task", "token-classification",
             "--tokens-column", "words", "--tags-column", "tags", "--max-length", "32",
             "--num-virtual-tokens", "4", "--lr", "0.05", "--epochs", "2"]  # fmt: skip
    assert main(["train", *flags, "--output-dir", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["task"] == {"type": "token-classification"} and results["metric"] == "f1"
    assert read_prompt_file(out / "prompt.safetensors").task.type.value == "token-classification"
    capsys.readouterr()

    report = tmp_path / "eval.json"
    eval_flags = ["--prompt", str(out), "--model", str(model_dir), "--data", str(data_dir), "--task",
                  "token-classification", "--tokens-column", "words", "--tags-column", "tags", "--max-length", "32"]  # fmt: skip
    assert main(["eval", *eval_flags, "--output-json", str(report)]) == 0
    assert json.loads(report.read_text())["eval_f1"] == results["eval_f1"]  # to the last digit
    capsys.readouterr()

    assert main(["predict", "--prompt", str(out), "--model", str(model_dir), "ada loved paris"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    pf = read_prompt_file(out / "prompt.safetensors")
    model = transformers.AutoModelForTokenClassification.from_pretrained(
        model_dir, num_labels=pf.num_labels, id2label=pf.id2label, ignore_mismatched_sizes=True
    )
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    wrapper = SoftPromptWrapper.from_pretrained(model, out, tokenizer=tok)
    assert row["entities"] == [e.to_dict() for e in wrapper.predict(["ada loved paris"])[0]]


def test_question_answering_from_the_command_line(tmp_path, capsys):
    from tests.test_question_answering import QA_VOCAB, _splits

    tok = transformers.BertTokenizer(vocab={t: i for i, t in enumerate(QA_VOCAB)})
    tok.model_max_length = 64
    model_dir, data_dir = tmp_path / "tiny-bert", tmp_path / "squad"
    transformers.AutoModelForQuestionAnswering.from_config(model_config("bert", 2)).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    for split, rows in _splits().items():
        rows.to_json(data_dir / f"{split}.jsonl")
    out = tmp_path / "qa"
    flags = ["--model", str(model_dir), "--data", str(data_dir), "--task", "question-answering", "--max-length", "32",
             "--doc-stride", "8", "--max-answer-length", "5"]  # fmt: skip
    assert (
        main(
            [
                "train",
                *flags,
                "--num-virtual-tokens",
                "4",
                "--lr",
                "0.05",
                "--epochs",
                "2",
                "--output-dir",
                str(out),
            ]
        )
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    assert results["task"] == {"type": "question-answering"} and results["metric"] == "f1"
    capsys.readouterr()
    report = tmp_path / "eval.json"
    assert main(["eval", "--prompt", str(out), *flags, "--output-json", str(report)]) == 0
    assert json.loads(report.read_text())["eval_f1"] == results["eval_f1"]  # to the last digit
    capsys.readouterr()
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps({"question": "who wrote the book ?", "context": "the book was written by ada ."}) + "\n"
    )
    assert (
        main(
            [
                "predict",
                "--prompt",
                str(out),
                "--model",
                str(model_dir),
                "--max-length",
                "32",
                "--file",
                str(questions),
            ]
        )
        == 0
    )
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    context = "the book was written by ada ."
    assert context[row["start"] : row["end"]] == row["text"]  # an exact span of the context


def test_text_to_label_from_the_command_line(tmp_path, capsys):
    """A tiny Llama generates the class word; eval in the run's settings gives the run's accuracy."""
    from tests.test_text_to_label import CLASSES, NAMES, TEXTS, _model, _tokenizer

    model_dir, data_dir = tmp_path / "tiny-llama", tmp_path / "sentiment"
    _model("llama").save_pretrained(model_dir)
    _tokenizer().save_pretrained(model_dir)
    data_dir.mkdir()
    frame = pd.DataFrame({"text": TEXTS, "label": [NAMES[c] for c in CLASSES]})
    for split in ("train", "validation"):
        frame.to_json(data_dir / f"{split}.jsonl", orient="records", lines=True)
    out = tmp_path / "t2l"
    flags = [
        "--model",
        str(model_dir),
        "--data",
        str(data_dir),
        "--task",
        "text-to-label",
        "--max-length",
        "32",
    ]
    assert main(["train", *flags, "--num-virtual-tokens", "4", "--init", "random", "--lr", "0.1", "--epochs", "3",
                 "--batch-size", "4", "--output-dir", str(out)]) == 0  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert results["task"]["type"] == "text-to-label" and results["metric"] == "accuracy"
    capsys.readouterr()
    report = tmp_path / "eval.json"
    assert main(["eval", "--prompt", str(out), *flags, "--output-json", str(report)]) == 0
    assert json.loads(report.read_text())["eval_accuracy"] == results["eval_accuracy"]  # to the last digit
    capsys.readouterr()
    assert (
        main(["predict", "--prompt", str(out), "--model", str(model_dir), "--max-length", "32", "great film"])
        == 0
    )
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["label_name"] in ("negative", "positive", None)  # a word naming no class is reported as None
    assert main(["finetune", *flags, "--output-dir", str(tmp_path / "ft")]) == 2
    assert "prompt-tuning task" in capsys.readouterr().err
