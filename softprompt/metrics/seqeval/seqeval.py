"""Entity-level precision, recall and F1 (and word accuracy) of tag sequences, as an offline `evaluate` metric.

``evaluate.load("seqeval")`` fetches its script from the Hugging Face Hub; this file ships inside
softprompt and calls the ``seqeval`` package itself, so it works with no network.
"""

from __future__ import annotations

import datasets
import evaluate
import seqeval.metrics
import seqeval.scheme

_DESCRIPTION = """\
Entity-level scores of sequence labelling (named-entity recognition), computed by seqeval
(Nakayama, 2018) as the CoNLL-2000 shared task's conlleval script does. An entity is a maximal
run of tags such as B-PER I-PER; a predicted entity counts as correct only when its type and its
first and last word both equal a reference entity's. Precision, recall and F1 are micro averages
over all entities; accuracy is the fraction of words whose tag is right (O included).
In the default mode an I- tag without a preceding B- of its type still opens an entity (as
conlleval reads it); mode="strict" with a scheme (e.g. "IOB2") counts only well-formed entities.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (list of list of str): predicted tags, one list per sentence.
    references (list of list of str): true tags, lists of the same lengths.
    mode (str, optional): None (the default, conlleval's reading) or "strict".
    scheme (str, optional): with mode="strict": "IOB1", "IOB2", "IOE1", "IOE2", "IOBES" or "BILOU".
    zero_division (int): the score when a ratio has no denominator (no predicted or no true
        entities); 0 by default.
Returns:
    dict: {"precision": float, "recall": float, "f1": float, "accuracy": float}
Examples:
    >>> import evaluate
    >>> seqeval = evaluate.load("softprompt/metrics/seqeval/seqeval.py")
    >>> seqeval.compute(predictions=[["B-PER", "I-PER", "O"]], references=[["B-PER", "I-PER", "B-LOC"]])
    {'precision': 1.0, 'recall': 0.5, 'f1': 0.6666666666666666, 'accuracy': 0.6666666666666666}
"""

_CITATION = """\
@misc{seqeval,
  title={seqeval: A Python framework for sequence labeling evaluation},
  author={Hiroki Nakayama},
  year={2018},
  url={https://github.com/chakki-works/seqeval}
}
"""

_SCHEMES = ("IOB1", "IOB2", "IOE1", "IOE2", "IOBES", "BILOU")


class Seqeval(evaluate.Metric):
    """Entity-level precision, recall, F1 and word accuracy with the ``seqeval`` package."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
            reference_urls=["https://github.com/chakki-works/seqeval"],
        )

    def _compute(
        self,
        predictions: list[list[str]],
        references: list[list[str]],
        mode: str | None = None,
        scheme: str | None = None,
        zero_division: int = 0,
    ) -> dict[str, float]:
        if mode not in (None, "strict"):
            raise ValueError(f"seqeval got mode={mode!r}; choose None or 'strict'")
        if scheme is not None and scheme not in _SCHEMES:
            raise ValueError(f"seqeval got scheme={scheme!r}; choose one of {', '.join(_SCHEMES)}")
        if mode == "strict" and scheme is None:
            raise ValueError("seqeval with mode='strict' needs a scheme, e.g. scheme='IOB2'")
        predictions, references = [list(p) for p in predictions], [list(r) for r in references]
        if not any(references):
            raise ValueError("seqeval got no tags to score; pass at least one sentence with a tagged word")
        for i, (p, r) in enumerate(zip(predictions, references)):
            if len(p) != len(r):
                raise ValueError(
                    f"seqeval: sentence {i} has {len(p)} predicted tags for {len(r)} reference tags"
                )
        kwargs = {
            "mode": mode,
            "scheme": None if scheme is None else getattr(seqeval.scheme, scheme),
            "zero_division": zero_division,
        }
        return {
            "precision": float(seqeval.metrics.precision_score(references, predictions, **kwargs)),
            "recall": float(seqeval.metrics.recall_score(references, predictions, **kwargs)),
            "f1": float(seqeval.metrics.f1_score(references, predictions, **kwargs)),
            "accuracy": float(seqeval.metrics.accuracy_score(references, predictions)),
        }
