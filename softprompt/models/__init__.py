"""Running prompts inside a frozen Hugging Face model: everything model-specific, no task logic.

``backbone`` and ``support`` (what a model is and whether it can be run exactly), ``loading``,
``layout`` (splicing virtual tokens into a batch), ``decoder`` / ``seq2seq`` (their row layouts),
``init`` (a new prompt's first values), ``deep`` (per-layer prompts), ``slot`` (one prompt with its
head), ``heads`` (head views), ``routing`` (a batch through its slots), ``prompt_registry`` (named slots),
``usage`` (prompts in use by running calls), ``spans`` (answer positions), ``modes`` (``eval_mode``: dropout off for a block, each module's mode back), and the speed levers ``precision``, ``quantize``, ``onednn``, ``bf16_cpu``, ``first_token``.
"""
