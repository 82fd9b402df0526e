"""The `softprompt` command end to end on a tiny model saved to disk and a tiny parquet dataset."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from softprompt import read_prompt_file
from softprompt.cli import main

REPO = Path(__file__).resolve().parents[1]


def _run_flags(model_dir, data_dir, out, *extra):
    return ["--model", str(model_dir), "--data", str(data_dir), "--train-size", "64", "--eval-size", "40",
            "--epochs", "3", "--max-length", "32", "--num-virtual-tokens", "4", "--lr", "0.05", "--batch-size", "8",
            "--output-dir", str(out), "--seed", "42", "--label-names", "neg", "pos", *extra]  # fmt: skip


def test_train_then_eval_reproduces_accuracy_to_the_last_digit(assets, tmp_path, capsys):
    model_dir, data_dir = assets
    out = tmp_path / "pt"
    assert main(["train", *_run_flags(model_dir, data_dir, out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert {
        "eval_accuracy",
        "epochs",
        "train_samples_per_second",
        "versions",
        "reloaded_eval_metrics",
    } <= set(results)
    assert results["task"] == {"type": "classification"} and results["metric"] == "accuracy"
    assert results["reloaded_eval_metrics"]["eval_accuracy"] == results["eval_accuracy"]
    assert len(results["epochs"]) == 3 and results["eval_samples"] == 40
    assert (out / "prompt.safetensors").is_file() and (out / "curves.png").stat().st_size > 1000
    capsys.readouterr()

    # a fresh process, as a user would run it
    report = tmp_path / "eval.json"
    cmd = [sys.executable, "-m", "softprompt.cli", "eval", "--prompt", str(out / "prompt.safetensors"), "--model", str(model_dir),
           "--data", str(data_dir), "--eval-size", "40", "--seed", "42", "--max-length", "32", "--output-json", str(report)]  # fmt: skip
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, timeout=300)
    assert json.loads(report.read_text())["eval_accuracy"] == results["eval_accuracy"]


def test_eval_of_a_run_folder_scores_the_rows_the_run_scored(assets, tmp_path, capsys):
    """A run trained with --seed 3 and evaluated without it was once scored on other rows, silently (54.7 % in
    results.json, 62.5 % from eval on 64 SICK pairs): eval now takes the run's data settings from its
    run_config.json, and says which rows it scored."""
    model_dir, data_dir = assets
    out = tmp_path / "pt"
    flags = [
        f if f != "42" else "3" for f in _run_flags(model_dir, data_dir, out, "--epochs", "1")
    ]  # --seed 3
    assert main(["train", *flags, "--eval-size", "24"]) == 0
    results = json.loads((out / "results.json").read_text())
    capsys.readouterr()
    assert main(["eval", "--prompt", str(out / "prompt.safetensors"), "--model", str(model_dir)]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["eval_accuracy"] == results["eval_accuracy"]
    assert (scored["seed"], scored["rows"], scored["eval_size"], scored["data"]) == (3, 24, 24, str(data_dir))
    assert scored["data_settings_from"] == str(out / "run_config.json")
    # a setting given on the command line wins, and the rows it scored are printed
    assert (
        main(["eval", "--prompt", str(out / "prompt.safetensors"), "--model", str(model_dir), "--seed", "5"])
        == 0
    )
    other = json.loads(capsys.readouterr().out)
    assert (other["seed"], other["rows"]) == (5, 24)


def test_eval_on_a_split_named_scores_all_of_it_not_the_runs_subset_size(assets, tmp_path, capsys):
    """A run that scored 16 random rows of its split, evaluated with ``--eval-split test``, once scored 16
    random test rows, silently (a table said "the whole test split"): a split named is scored whole."""
    model_dir, data_dir = assets
    out = tmp_path / "pt"
    flags = _run_flags(model_dir, data_dir, out, "--epochs", "1")
    flags[flags.index("--eval-size") + 1] = "16"
    assert main(["train", *flags]) == 0
    capsys.readouterr()
    base = ["eval", "--prompt", str(out / "prompt.safetensors"), "--model", str(model_dir)]
    assert main(base) == 0
    runs = json.loads(capsys.readouterr().out)
    assert runs["rows"] == 16  # the run's rows, as before
    assert main([*base, "--eval-split", "test"]) == 0
    whole = json.loads(capsys.readouterr().out)
    test_rows = len(pd.read_parquet(data_dir / "test.parquet"))
    assert (whole["eval_split"], whole["rows"], whole["eval_size"]) == (
        "test",
        test_rows,
        None,
    )  # all of them
    assert test_rows > 16
    assert main([*base, "--eval-split", "test", "--eval-size", "20"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 20
    # the run's own split, whole: a flag given at its default value ("all" is None) still beats the run's 16
    assert main([*base, "--eval-size", "all"]) == 0
    own = json.loads(capsys.readouterr().out)
    split_rows = len(pd.read_parquet(data_dir / f"{runs['eval_split']}.parquet"))
    assert (own["eval_split"], own["eval_size"], own["rows"]) == (runs["eval_split"], None, split_rows)
    assert split_rows > 16


def test_predict_and_inspect(assets, tmp_path, capsys):
    model_dir, data_dir = assets
    out = tmp_path / "pt"
    main(["train", *_run_flags(model_dir, data_dir, out, "--epochs", "1")])
    capsys.readouterr()
    texts = tmp_path / "texts.txt"
    texts.write_text('great film\n{"text": "awful plot"}\n\n')
    jsonl = tmp_path / "preds.jsonl"
    prompt = str(out / "prompt.safetensors")
    assert main(["predict", "--prompt", prompt, "--model", str(model_dir), "superb acting", "--file", str(texts),
                 "--output", str(jsonl)]) == 0  # fmt: skip
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["text"] for r in rows] == ["superb acting", "great film", "awful plot"]
    assert all(r["label_name"] in ("neg", "pos") and 0.5 <= r["confidence"] <= 1 for r in rows)

    int8 = tmp_path / "int8.jsonl"  # the int8 backbone: same texts, same labels, close confidences
    assert main(["predict", "--prompt", prompt, "--model", str(model_dir), "superb acting", "--file", str(texts),
                 "--output", str(int8), "--int8"]) == 0  # fmt: skip
    rows8 = [json.loads(line) for line in int8.read_text().splitlines()]
    assert [r["text"] for r in rows8] == [r["text"] for r in rows]
    assert all(
        abs(a["confidence"] - b["confidence"]) < 0.05 for a, b in zip(rows, rows8) if a["label"] == b["label"]
    )
    assert main(["predict", "--prompt", prompt, "--model", str(model_dir), "x", "--int8", "--bf16"]) == 2
    assert "exclude each other" in capsys.readouterr().err

    assert main(["inspect", prompt]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["tensors"]["prompt_embeddings"] == [4, 32]
    assert info["num_labels"] == 2 and info["id2label"] == {"0": "neg", "1": "pos"}


def test_errors_are_one_line_and_exit_2(assets, tmp_path, capsys):
    model_dir, data_dir = assets
    assert main(["inspect", str(tmp_path / "missing.safetensors")]) == 2
    assert "softprompt inspect: error:" in capsys.readouterr().err
    assert main(["predict", "--prompt", str(tmp_path / "x.safetensors"), "--model", str(model_dir)]) == 2
    assert "no texts" in capsys.readouterr().err
    assert main(["train", *_run_flags(model_dir, tmp_path / "nodata", tmp_path / "o")]) == 2
    with pytest.raises(SystemExit):
        main(["train", "--train-size", "-3"])


def test_every_flag_has_help():
    from softprompt.cli import build_parser

    parser = build_parser()
    for action in parser._subparsers._group_actions[0].choices.values():
        for flag in action._actions:
            if flag.dest != "help":
                assert flag.help, f"{action.prog} {flag.option_strings or flag.dest} has no help text"


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    """A SICK-like folder: two text columns, a string label and a float score."""
    import random

    import pandas as pd

    from tests.conftest import WORDS

    root = tmp_path_factory.mktemp("pairs")
    for split, n, seed in (("train", 32, 0), ("test", 16, 1)):
        rng = random.Random(seed)
        rows = [
            {
                "sentence_a": " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6))),
                "sentence_b": " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6))),
                "label": rng.choice(["entailment", "neutral", "contradiction"]),
                "relatedness": round(rng.uniform(1, 5), 1),
            }
            for _ in range(n)
        ]
        pd.DataFrame(rows).to_parquet(root / f"{split}.parquet")
    return root


@pytest.mark.parametrize(
    ("labels", "metric"),
    [
        (["--label-column", "label"], "eval_accuracy"),
        (["--label-column", "relatedness", "--task", "regression"], "eval_pearson"),
    ],
    ids=["pairs-3-class", "pairs-regression"],
)
def test_pair_and_regression_runs_from_the_cli(assets, pairs_dir, tmp_path, capsys, labels, metric):
    model_dir, _ = assets
    out = tmp_path / "run"
    columns = [
        "--data",
        str(pairs_dir),
        "--text-column",
        "sentence_a",
        "--text-pair-column",
        "sentence_b",
        *labels,
    ]
    flags = ["--model", str(model_dir), *columns, "--epochs", "2", "--max-length", "32", "--num-virtual-tokens", "4",
             "--batch-size", "8", "--output-dir", str(out)]  # fmt: skip
    assert main(["train", *flags]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["is_pair"] and results["eval_split"] == "test" and metric in results
    task = "regression" if "regression" in labels else "classification"
    assert results["task"]["type"] == task
    if task == "classification":
        assert results["label_names"] == ["contradiction", "entailment", "neutral"]
    capsys.readouterr()
    report = tmp_path / "eval.json"
    cmd = [sys.executable, "-m", "softprompt.cli", "eval", "--prompt", str(out / "prompt.safetensors"), "--model",
           str(model_dir), *columns, "--max-length", "32", "--output-json", str(report), "--threads", "1"]  # fmt: skip
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, timeout=300)
    # a new process with this one's thread count (tests run one thread): the same digits
    assert json.loads(report.read_text())[metric] == results[metric]
    predict = [sys.executable, "-m", "softprompt.cli", "predict", "--prompt", str(out / "prompt.safetensors"),
               "--model", str(model_dir), "--file", str(tmp_path / "pairs.jsonl")]  # fmt: skip
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"text": "great film", "text_pair": "bad plot"}) + "\n")
    row = json.loads(
        subprocess.run(predict, cwd=REPO, check=True, capture_output=True, text=True, timeout=300).stdout
    )
    assert row["text_pair"] == "bad plot" and (
        "value" in row if task == "regression" else "label_name" in row
    )


def test_help_says_nothing_of_imdb():
    from softprompt.cli import build_parser

    parser = build_parser()
    texts = [parser.format_help()] + [
        sub.format_help() for action in parser._subparsers._group_actions for sub in action.choices.values()
    ]
    assert not any(word in text.lower() for text in texts for word in ("imdb", "review", "chapter"))


@pytest.mark.parametrize("extra", [[], ["--deterministic"]], ids=["default", "deterministic"])
def test_same_seed_same_prompt_file_across_processes(assets, pairs_dir, tmp_path, extra):
    """Two runs of the same command, each in its own process: byte-identical prompt files (on a CPU
    without ``--deterministic`` too)."""
    model_dir, _ = assets
    files = []
    for run in ("a", "b"):
        out = tmp_path / run
        cmd = [sys.executable, "-m", "softprompt.cli", "train", "--model", str(model_dir), "--data", str(pairs_dir),
               "--text-column", "sentence_a", "--text-pair-column", "sentence_b", "--label-column", "label",
               "--epochs", "1", "--max-length", "32", "--num-virtual-tokens", "4", "--batch-size", "8",
               "--seed", "3", "--output-dir", str(out), *extra]  # fmt: skip
        subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, timeout=300)
        files.append((out / "prompt.safetensors").read_bytes())
    assert files[0] == files[1]


def test_user_errors_are_one_line_and_exit_2(assets, tmp_path, capsys):
    model_dir, data_dir = assets
    out = tmp_path / "pt"
    assert main(["train", *_run_flags(model_dir, data_dir, out, "--epochs", "1")]) == 0
    prompt = str(out / "prompt.safetensors")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    infer = ["--prompt", prompt, "--model", str(model_dir)]
    cases = {
        "--output-json is a folder": ["eval", *infer, "--data", str(data_dir), "--output-json", str(tmp_path)],
        "--output under a file": ["predict", *infer, "x", "--output", str(a_file / "out.jsonl")],
        "--output-dir under a file": ["train", *_run_flags(model_dir, data_dir, a_file / "run")],
        "--epochs inf": ["train", *_run_flags(model_dir, data_dir, tmp_path / "e", "--epochs", "inf")],
        "a bad model path": ["predict", "--prompt", prompt, "--model", str(tmp_path / "no-such-model"), "x"],
        "--init text without --init-text": ["train", *_run_flags(model_dir, data_dir, tmp_path / "t", "--init", "text")],
        "non-UTF-8 text": ["predict", *infer, "--file", str(latin1)],
        "too many virtual tokens": ["train", *_run_flags(model_dir, data_dir, tmp_path / "v", "--num-virtual-tokens", "600", "--max-length", "700")],
        # once an allocation traceback: checked before anything is allocated
        "1e18 virtual tokens": ["train", *_run_flags(model_dir, data_dir, tmp_path / "w", "--num-virtual-tokens", str(10**18))],
    }  # fmt: skip
    for what, argv in cases.items():
        capsys.readouterr()
        assert main(argv) == 2, what
        err = capsys.readouterr().err.strip().splitlines()  # progress bars may come first
        errors = [line for line in err if line.startswith(f"softprompt {argv[0]}: error:")]
        assert len(errors) == 1 and err[-1] == errors[0] and "Traceback" not in "\n".join(err), (
            what,
            err[-3:],
        )
        assert "max_length=-" not in errors[0], what
        print(what, "->", errors[0])
    assert not (a_file.is_dir() or (tmp_path / "e").exists())  # refused before any work


def test_train_size_zero_is_an_error_not_all(assets, tmp_path, capsys):
    model_dir, data_dir = assets
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *_run_flags(model_dir, data_dir, tmp_path / "z", "--train-size", "0")])
    assert exit_info.value.code == 2 and "positive number or 'all'" in capsys.readouterr().err


def test_a_prompt_loads_onto_a_checkpoint_with_another_head(tmp_path, tokenizer, capsys):
    """A 3-class prompt (with or without label names) on a 2-class checkpoint: the file's head is used."""
    from softprompt import SoftPromptWrapper, read_prompt_file
    from tests.conftest import make_model

    model_dir = tmp_path / "two-labels"
    make_model("bert", num_labels=2).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    path = SoftPromptWrapper(make_model("bert", num_labels=3), tokenizer=tokenizer).save_prompt(
        tmp_path / "p.safetensors"
    )
    unnamed = read_prompt_file(path)
    unnamed.id2label = {}
    unnamed.save(tmp_path / "unnamed.safetensors")
    for prompt in (path, tmp_path / "unnamed.safetensors"):
        capsys.readouterr()
        assert main(["predict", "--prompt", str(prompt), "--model", str(model_dir), "a film"]) == 0
        row = json.loads(capsys.readouterr().out)
        assert row["label"] in (0, 1, 2)


def test_inspect_into_a_closed_pipe_is_quiet(tmp_path):
    """``softprompt inspect F | head`` when the reader has gone: no BrokenPipeError traceback."""
    import os

    from softprompt import SoftPromptWrapper
    from tests.conftest import make_model, make_tokenizer

    path = SoftPromptWrapper(make_model("bert"), tokenizer=make_tokenizer()).save_prompt(
        tmp_path / "p.safetensors"
    )
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has left before anything is written
    try:
        proc = subprocess.run([sys.executable, "-m", "softprompt", "inspect", str(path)], cwd=REPO,
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)  # fmt: skip
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.returncode == 0


# --- flags from dataclasses, TrainingArguments overrides, config files (softprompt/cli_args.py) ---


def _one_error_line(err: str, prog: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), lines
    return lines[0]


def test_a_yaml_config_run_equals_the_flag_run_and_its_resolved_config_reruns_it(assets, tmp_path, capsys):
    model_dir, data_dir = assets
    by_flags = tmp_path / "flags"
    assert main(["train", *_run_flags(model_dir, data_dir, by_flags, "--epochs", "1")]) == 0
    config = tmp_path / "run.yaml"
    config.write_text(
        f"model: {model_dir}\ndata: {data_dir}\ntrain_size: 64\neval_size: 40\nepochs: 1\nmax_length: 32\n"
        "num_virtual_tokens: 4\n"
        "learning_rate: 5e-2  # lr's TrainingArguments name; YAML reads 5e-2 as text, read as the flag reads it\n"
        f"batch_size: 8\nseed: 42\nlabel_names: [neg, pos]\noutput_dir: {tmp_path / 'not-used'}\n"
    )
    by_file = tmp_path / "file"
    assert main(["train", "--config", str(config), "--output-dir", str(by_file)]) == 0  # the flag wins
    assert not (tmp_path / "not-used").exists()
    prompt = (by_flags / "prompt.safetensors").read_bytes()
    assert (by_file / "prompt.safetensors").read_bytes() == prompt
    resolved = json.loads((by_flags / "run_config.json").read_text())
    from_file = json.loads((by_file / "run_config.json").read_text())
    assert from_file == {**resolved, "output_dir": str(by_file)}
    assert (
        resolved["lr"] == 0.05
        and resolved["label_names"] == ["neg", "pos"]
        and resolved["training_args"] == {}
    )
    assert (resolved["resume"], resolved["overwrite"]) == (False, False)

    accuracy = json.loads((by_flags / "results.json").read_text())["eval_accuracy"]
    (by_flags / "prompt.safetensors").unlink()
    assert main(["train", "--config", str(by_flags / "run_config.json"), "--overwrite"]) == 0
    assert (by_flags / "prompt.safetensors").read_bytes() == prompt
    assert json.loads((by_flags / "results.json").read_text())["eval_accuracy"] == accuracy
    capsys.readouterr()


@pytest.mark.parametrize("command", ["train", "finetune"])
def test_training_arguments_flags_reach_the_trainer(assets, tmp_path, capsys, command):
    model_dir, data_dir = assets
    out = tmp_path / command
    overrides = ["--gradient_accumulation_steps", "2", "--weight_decay", "0.1", "--max-grad-norm", "0.5",
                 "--optim", "adafactor", "--no_dataloader_pin_memory"]  # fmt: skip
    assert main([command, *_run_flags(model_dir, data_dir, out, "--epochs", "1", *overrides)]) == 0
    args = json.loads((out / "training_args.json").read_text())
    assert (args["gradient_accumulation_steps"], args["weight_decay"], args["max_grad_norm"]) == (2, 0.1, 0.5)
    assert (args["optim"], args["dataloader_pin_memory"]) == ("adafactor", False)
    # RunConfig's settings and the library's defaults for everything not given
    assert (args["per_device_train_batch_size"], args["learning_rate"], args["seed"]) == (8, 0.05, 42)
    assert (args["eval_strategy"], args["save_strategy"], args["load_best_model_at_end"]) == (
        "epoch",
        "epoch",
        True,
    )
    resolved = json.loads((out / "run_config.json").read_text())
    assert resolved["training_args"] == {"gradient_accumulation_steps": 2, "weight_decay": 0.1, "max_grad_norm": 0.5,
                                         "optim": "adafactor", "dataloader_pin_memory": False}  # fmt: skip
    capsys.readouterr()


def _parsed(*flags, command="train"):
    from softprompt.cli.args import command_parser, run_config_from_args

    return run_config_from_args(command_parser(command).parse_args(["--model", "m", "--data", "d", *flags]))


def test_trainingarguments_spellings_are_the_runconfig_flags(capsys):
    assert _parsed("--learning_rate", "0.05") == _parsed("--lr", "0.05") == _parsed("--learning-rate", "5e-2")
    pairs = [("--num_train_epochs", "--epochs", "2"), ("--per_device_train_batch_size", "--batch-size", "4"),
             ("--per_device_eval_batch_size", "--eval-batch-size", "16"), ("--warmup_steps", "--warmup", "0.2"),
             ("--lr_scheduler_type", "--scheduler", "cosine"), ("--full_determinism", "--deterministic", "true"),
             ("--train_size", "--train-size", "10"), ("--output_dir", "--output-dir", "runs/x")]  # fmt: skip
    for alias, flag, value in pairs:
        assert _parsed(alias, value) == _parsed(flag, value), alias
    assert _parsed("--lr", "0.05", "--learning_rate", "0.05").lr == 0.05  # the same value twice is fine
    assert _parsed("--epochs", "1", "--epochs", "2").epochs == 2  # one spelling repeated: the last wins
    assert _parsed("--learning_rate", "0.1").training_args == {}  # a RunConfig setting, not an override
    for flags in (
        ["--lr", "0.05", "--learning_rate", "0.1"],
        ["--batch-size", "8", "--per_device_train_batch_size", "4"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            _parsed(*flags)
        assert exit_info.value.code == 2
        line = _one_error_line(capsys.readouterr().err, "softprompt train")
        assert flags[0] in line and flags[2] in line and "one setting" in line
    assert _parsed(command="finetune").lr == 2e-5 and _parsed().lr == 1e-2  # each command's own default


def test_config_file_keys_and_flags(tmp_path, capsys):
    """Keys are RunConfig or TrainingArguments names; flags given too win; a bad file is a one-line error."""
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"model": "m", "data": "d", "lr": 0.1, "train_size": "all", "weight_decay": 0.2,
                                  "training_args": {"gradient_accumulation_steps": 4}, "seed": 3}))  # fmt: skip
    cfg = _parsed(
        "--config", str(config), "--seed", "7", "--weight_decay", "0.3"
    )  # flags win, wherever they are
    assert (cfg.lr, cfg.train_size, cfg.seed) == (0.1, None, 7)
    assert cfg.training_args == {"gradient_accumulation_steps": 4, "weight_decay": 0.3}
    assert _parsed("--seed", "7", "--config", str(config)).seed == 7
    # --model and --data from the file alone
    from softprompt.cli.args import command_parser, run_config_from_args

    cfg = run_config_from_args(command_parser("finetune").parse_args(["--config", str(config)]))
    assert (cfg.model, cfg.data, cfg.batch_size) == ("m", "d", 32)

    bad = {
        "train_siz": ("unknown key 'train_siz'", "did you mean 'train_size'?"),
        "gradient_acumulation_steps": ("unknown key", "did you mean 'gradient_accumulation_steps'?"),
        "resume_from_checkpoint": ("resume_from_checkpoint cannot be set", "--resume"),
    }
    for key, needles in bad.items():
        config.write_text(json.dumps({"model": "m", key: 1}))
        assert main(["train", "--config", str(config)]) == 2
        line = _one_error_line(capsys.readouterr().err, "softprompt train")
        assert all(needle in line for needle in needles), line
    config.write_text(json.dumps({"training_args": {"learning_rate": 0.1}}))
    assert main(["train", "--config", str(config)]) == 2
    assert "learning_rate is RunConfig's lr" in _one_error_line(capsys.readouterr().err, "softprompt train")
    (tmp_path / "run.toml").write_text("lr = 1")
    assert main(["train", "--config", str(tmp_path / "run.toml")]) == 2
    assert ".yaml, .yml or .json" in _one_error_line(capsys.readouterr().err, "softprompt train")
    (tmp_path / "run.yaml").write_text("init: [random\n")
    assert main(["train", "--config", str(tmp_path / "run.yaml")]) == 2
    assert "not valid YAML" in _one_error_line(capsys.readouterr().err, "softprompt train")
    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "No such file" in _one_error_line(capsys.readouterr().err, "softprompt train")
    assert main(["train", "--data", "d"]) == 2  # no --model anywhere
    assert "--model is required" in _one_error_line(capsys.readouterr().err, "softprompt train")


def test_usage_errors_are_one_line_with_the_closest_flag(capsys):
    cases = {
        ("train", "--model", "m", "--lrr", "1"): ("softprompt train", "did you mean --lr?"),
        ("train", "--model", "m", "--eval", "3"): ("softprompt train", "unrecognized arguments: --eval"),  # no abbreviations
        ("finetune", "--resume_from_checkpoint", "x"): ("softprompt finetune", "--resume"),
        ("predict", "--model", "m", "--prmpt", "p"): ("softprompt predict", "did you mean --prompt?"),
        ("trian",): ("softprompt", "invalid choice: 'trian'"),
        ("-v",): ("softprompt", "required: COMMAND"),
    }  # fmt: skip
    for argv, (prog, needle) in cases.items():
        with pytest.raises(SystemExit) as exit_info:
            main(list(argv))
        assert exit_info.value.code == 2, argv
        assert needle in _one_error_line(capsys.readouterr().err, prog), argv


def test_version_and_help_come_from_the_field_docs(capsys):
    import dataclasses

    from softprompt import RunConfig, __version__
    from softprompt.cli.command_args import COMMAND_ARGS

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"softprompt {__version__}"
    for command in ("train", "finetune", "eval", "predict", "inspect"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        text = "".join(capsys.readouterr().out.split())  # no whitespace: argparse wraps lines, at hyphens too
        cls = COMMAND_ARGS.get(command, RunConfig)
        for field in dataclasses.fields(cls):
            if (
                field.init and field.name != "training_args"
            ):  # init=False fields are set by the parser, not flags
                assert "".join(field.metadata["help"].split()) in text, (command, field.name)
        if command in ("train", "finetune"):
            assert "--gradient_accumulation_steps" in text and "TrainingArgumentsoverrides" in text
            assert "--learning-rate" in text and "--configFILE" in text
            assert ("(default:2e-05)" if command == "finetune" else "(default:0.01)") in text


def test_top_level_help_imports_neither_torch_nor_transformers():
    code = ("import sys\nfrom softprompt.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip().splitlines()[-1] == "[]" and "COMMAND" in proc.stdout


def test_deep_reparam_hidden_trains_deep_prompts_through_an_mlp_and_reloads_exactly(assets, tmp_path, capsys):
    model_dir, data_dir = assets
    out = tmp_path / "deep"
    flags = _run_flags(model_dir, data_dir, out, "--epochs", "1", "--deep", "--deep-reparam-hidden", "8")
    assert main(["train", *flags]) == 0
    assert json.loads((out / "run_config.json").read_text())["deep_reparam_hidden"] == 8
    pf = read_prompt_file(out / "prompt.safetensors")
    assert pf.config.deep and pf.config.deep_reparam_hidden == 8 and pf.deep_prompts is not None
    assert not pf.deep_reparam  # folded into plain deep vectors when training ended
    results = json.loads((out / "results.json").read_text())
    assert results["eval_metrics"]["eval_accuracy"] == results["reloaded_eval_metrics"]["eval_accuracy"]
    capsys.readouterr()
    refused = {  # each refused with its reason, nothing trained
        "a": ("train", ["--deep-reparam-hidden", "8"], "set deep=True as well"),
        "b": ("train", ["--deep", "--deep-reparam-hidden", "8", "--residual-hidden", "8"], "set one of them"),
        "c": ("train", ["--deep", "--deep-reparam-hidden", "0"], "positive int"),
        "d": (
            "finetune",
            ["--deep", "--deep-reparam-hidden", "8"],
            "deep, deep_reparam_hidden: prompt-tuning",
        ),
        "e": ("finetune", ["--deep"], "deep: prompt-tuning settings; fine-tuning has no prompt"),
    }
    for name, (command, extra, reason) in refused.items():
        assert main([command, *_run_flags(model_dir, data_dir, tmp_path / name, *extra)]) == 2, name
        assert reason in capsys.readouterr().err, name
        assert not (tmp_path / name / "prompt.safetensors").exists()


def test_init_from_transfers_a_run_and_residual_trains_folded(assets, tmp_path):
    model_dir, data_dir = assets
    source = tmp_path / "source"
    assert main(["train", *_run_flags(model_dir, data_dir, source, "--epochs", "1")]) == 0
    target = tmp_path / "target"
    flags = _run_flags(
        model_dir, data_dir, target, "--epochs", "1", "--init-from", str(source), "--residual-hidden", "8"
    )
    assert main(["train", *flags]) == 0
    saved = json.loads((target / "run_config.json").read_text())
    assert saved["init"] == "prompt" and saved["init_from"] == [str(source)] and saved["residual_hidden"] == 8
    pf = read_prompt_file(target / "prompt.safetensors")
    assert pf.config.init_from == [str(source)] and pf.config.residual_hidden == 8
    assert not pf.prompt_reparam  # folded when training ended
    results = json.loads((target / "results.json").read_text())
    assert results["eval_metrics"]["eval_accuracy"] == results["reloaded_eval_metrics"]["eval_accuracy"]
    # what trained (the residual MLP too) and what the file holds (plain vectors, as the plain run's)
    plain = json.loads((source / "results.json").read_text())
    assert results["saved_parameters"] == plain["trainable_parameters"] == plain["saved_parameters"]
    assert results["trainable_parameters"] > results["saved_parameters"]
    assert (
        main(["train", *_run_flags(model_dir, data_dir, tmp_path / "x", "--init", "prompt")]) == 2
    )  # no files
    assert (
        main(["finetune", *_run_flags(model_dir, data_dir, tmp_path / "ft", "--init-from", str(source))]) == 2
    )
