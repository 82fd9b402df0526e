"""Loading what a run trains: its data, the tokenizer, and the model with the class and head its task needs."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import transformers

from softprompt.data import TaskData
from softprompt.models.init import head_output_layer, zero_head_output
from softprompt.runs.config import RunConfig
from softprompt.training.head_fit import fits_by_least_squares, require_regression

__all__ = ["LoadedRun", "load_run"]

logger = logging.getLogger(__name__)


class LoadedRun(NamedTuple):
    """What :func:`load_run` gives.

    Attributes:
        data: The run's :class:`~softprompt.data.TaskData`.
        tokenizer: The model's tokenizer (padding with its end-of-text token if it had no padding token).
        model: The model, of the class the task needs, with a head of the data's size.
        fit_head: Whether prompt tuning starts the head at the least-squares fit
            (:func:`~softprompt.training.head_fit.fit_regression_head`): ``head_init="fit"``, or ``"auto"``
            with a deep prompt and a regression head the checkpoint lacks.
    """

    data: TaskData
    tokenizer: Any
    model: Any
    fit_head: bool


def load_run(cfg: RunConfig) -> LoadedRun:
    """A run's data, tokenizer and model: the model class the task needs, a head of the data's size.

    A tokenizer without a padding token pads with its end-of-text token (GPT-2, Llama), and the model's
    config learns that id (decoder classifiers find each row's last token by it).

    Examples:
        >>> data, tokenizer, model, fit_head = load_run(RunConfig(model="bert-base-uncased", data="glue", data_config="sst2"))  # doctest: +SKIP
    """
    data = cfg.load_data()
    logger.info("task: %s%s", data.task.type.value, " (text pairs)" if data.is_pair else "")
    tokenizer = transformers.AutoTokenizer.from_pretrained(cfg.model)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:  # GPT-2, Llama: no padding token
        tokenizer.pad_token = tokenizer.eos_token
        logger.info(
            "the tokenizer has no padding token: padding with its end-of-text token %r", tokenizer.eos_token
        )
    # a checkpoint whose head has another number of classes gets a new head (transformers reports it)
    model, info = data.task.auto_model_class.from_pretrained(  # the task's class: token, QA, LM heads...
        cfg.model, ignore_mismatched_sizes=True, output_loading_info=True, **data.model_kwargs()
    )
    if getattr(model.config, "pad_token_id", None) is None and tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id  # decoder classifiers find the last token by it
    if cfg.head_init == "zeros":
        if not data.task.has_head:
            raise ValueError(
                "head_init='zeros': a text-to-label prompt has no head (it generates the class word)"
            )
        _zero_new_head(model, info)
    fit_head = False
    if cfg.head_init == "fit":
        _check_fit(data, model, info)
        fit_head = True
    elif cfg.head_init == "auto":  # a deep prompt's new regression head starts at the fit; the rest as loaded
        fit_head = cfg.deep and fits_by_least_squares(data.task) and _auto_fits(model, info)
    return LoadedRun(data, tokenizer, model, fit_head)


def _new_keys(info: dict[str, Any]) -> set[str]:
    """Parameter names ``from_pretrained`` initialised anew (missing, or of another shape in the checkpoint)."""
    return set(info.get("missing_keys", ())) | {
        k[0] if isinstance(k, tuple) else k for k in info.get("mismatched_keys", ())
    }


def _is_new(model: Any, info: dict[str, Any]) -> bool:
    """Whether ``from_pretrained`` initialised the head's output layer anew (the checkpoint has none of its size)."""
    return f"{head_output_layer(model, model.config.num_labels)}.weight" in _new_keys(info)


def _auto_fits(model: Any, info: dict[str, Any]) -> bool:
    """``head_init="auto"``: fit a new head; a head whose output layer cannot be told is left as loaded."""
    try:
        return _is_new(model, info)
    except ValueError as err:  # an unusual head: auto never fails a run that head_init='model' would run
        logger.warning("head_init='auto': the head is not fitted (%s)", err)
        return False


def _check_fit(data: TaskData, model: Any, info: dict[str, Any]) -> None:
    """``head_init="fit"``: a regression task whose output layer the checkpoint lacks (the fit runs later)."""
    require_regression(data.task)
    if not _is_new(model, info):
        layer = head_output_layer(model, model.config.num_labels)
        raise ValueError(
            f"head_init='fit': the checkpoint has a trained {layer}; fitting would overwrite it "
            "(use head_init='model' to keep it)"
        )


def _zero_new_head(model: Any, info: dict[str, Any]) -> None:
    """``head_init="zeros"``: zero the output layer if ``from_pretrained`` initialised it anew."""
    layer = head_output_layer(model, model.config.num_labels)
    if not _is_new(model, info):
        logger.warning("head_init='zeros': the checkpoint has a trained %s; kept as it is", layer)
        return
    zero_head_output(model, model.config.num_labels)
    logger.info("head_init='zeros': %s starts at zero", layer)
