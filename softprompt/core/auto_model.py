"""`AutoModelForTextToLabel`: the ``transformers`` auto class of a text-to-label task, chosen by the config.

``AutoModelForSeq2SeqLM`` for encoder-decoder configs (T5, BART), else ``AutoModelForCausalLM``;
:attr:`softprompt.Task.auto_model_class` returns it, so loading a task's model needs no branch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AutoModelForTextToLabel", "text_to_label_model_class"]


def text_to_label_model_class(config: Any) -> type:
    """``AutoModelForSeq2SeqLM`` for an encoder-decoder ``config`` (T5, BART), else ``AutoModelForCausalLM``.

    Examples:
        >>> import transformers
        >>> text_to_label_model_class(transformers.T5Config()).__name__
        'AutoModelForSeq2SeqLM'
    """
    import transformers

    if getattr(config, "is_encoder_decoder", False):
        return transformers.AutoModelForSeq2SeqLM
    return transformers.AutoModelForCausalLM


# from_pretrained arguments that AutoConfig.from_pretrained needs too, to find the same config
_CONFIG_OPTIONS = ("revision", "cache_dir", "token", "local_files_only", "trust_remote_code", "subfolder",
                   "force_download")  # fmt: skip


class AutoModelForTextToLabel:
    """The model class of a text-to-label task: :func:`text_to_label_model_class` of the checkpoint's config.

    ``Task("text-to-label").auto_model_class`` is this class, so code that loads a task's model
    (``data.task.auto_model_class.from_pretrained(name, **data.model_kwargs())``) loads T5 as
    ``AutoModelForSeq2SeqLM`` and GPT-2 as ``AutoModelForCausalLM`` without a branch of its own.

    Examples:
        >>> from softprompt import Task
        >>> Task("text-to-label").auto_model_class is AutoModelForTextToLabel
        True
        >>> model = AutoModelForTextToLabel.from_pretrained("t5-small")  # an AutoModelForSeq2SeqLM  # doctest: +SKIP
    """

    @classmethod
    def from_config(cls, config: Any, **kwargs: Any) -> Any:
        """A new (randomly initialised) model of the class the config's architecture generates with.

        Args:
            config: A ``transformers`` config of a sequence-to-sequence or causal language model.
            **kwargs: For that class's ``from_config``.

        Returns:
            The model.

        Raises:
            ValueError: the config is no language model's.

        Examples:
            >>> from transformers import GPT2Config
            >>> type(AutoModelForTextToLabel.from_config(GPT2Config(n_layer=1, n_embd=32, n_head=2))).__name__
            'GPT2LMHeadModel'
        """
        return text_to_label_model_class(config).from_config(config, **kwargs)

    @classmethod
    def from_pretrained(cls, name: Any, *args: Any, **kwargs: Any) -> Any:
        """Load a checkpoint with ``AutoModelForSeq2SeqLM`` or ``AutoModelForCausalLM``, whichever its config needs.

        Args:
            name: A Hub id or a local folder.
            *args: For the class's ``from_pretrained``.
            **kwargs: For the class's ``from_pretrained`` (``config``, ``revision``, ``cache_dir``...).

        Returns:
            The model.

        Raises:
            ValueError: the checkpoint is no language model.

        Examples:
            >>> from transformers import GPT2Config, GPT2LMHeadModel
            >>> GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2)).save_pretrained("tiny-gpt2")
            >>> type(AutoModelForTextToLabel.from_pretrained("tiny-gpt2")).__name__
            'GPT2LMHeadModel'
        """
        import transformers

        config = kwargs.get("config")
        if config is None:
            options = {k: kwargs[k] for k in _CONFIG_OPTIONS if k in kwargs}
            config = transformers.AutoConfig.from_pretrained(name, **options)
        return text_to_label_model_class(config).from_pretrained(name, *args, **kwargs)
