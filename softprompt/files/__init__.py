"""The prompt file: one self-describing ``.safetensors`` file per prompt, and the checks every read goes through.

``prompt_file`` (``PromptFile``, ``read_prompt_file``: bounded, validated reads; atomic writes) and
``checks`` (limits, fingerprints, metadata validation). Works on tensors and metadata, never on a model.
"""
