"""Data for sequence tasks: load any source into checked splits, tokenize them, check them before training.

Examples:
    >>> from softprompt import load_data, tokenize_dataset
    >>> data = load_data("../shared/data/sick", text_column="sentence_a", text_pair_column="sentence_b")  # doctest: +SKIP
    >>> train = tokenize_dataset(data.train, tok, max_length=128, num_virtual_tokens=20)  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from typing import Any

from softprompt.data.loading import TaskData, load_data
from softprompt.data.targets import tokenize_text_to_label
from softprompt.data.tokenize import check_tokenized, tokenize_dataset

__all__ = [
    "TaskData",
    "TextClassificationData",
    "check_tokenized",
    "load_data",
    "load_text_classification",
    "tokenize_dataset",
    "tokenize_text_to_label",
]

TextClassificationData = TaskData  # the 0.x name


def load_text_classification(data: Any, **kwargs: Any) -> TaskData:
    """Deprecated alias of :func:`load_data` (which also takes pairs, multi-label and regression data).

    Args:
        data: As for :func:`load_data`.
        **kwargs: As for :func:`load_data`.

    Returns:
        What :func:`load_data` returns; a ``DeprecationWarning`` says to call it instead.

    Examples:
        >>> import warnings, pandas as pd
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", DeprecationWarning)
        ...     data = load_text_classification(pd.DataFrame({"text": ["good", "bad"], "label": [1, 0]}), eval_split=None)
        >>> data.label_names
        ['0', '1']
    """
    warnings.warn("load_text_classification is renamed load_data", DeprecationWarning, stacklevel=2)
    return load_data(data, **kwargs)
