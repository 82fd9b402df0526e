"""ONNX export of a merged model folder (:mod:`softprompt.hub.merged`), with ``torch.onnx``'s exporter.

The merged folder is a plain ``transformers`` model, so the ONNX graph is exported from the folder
as written (loaded back with ``transformers`` alone), through ``torch.export`` and ``torch.onnx``
(``dynamo=True``, the maintained exporter; ``optimum-onnx`` does not support ``transformers`` 5). Batch
and sequence length are dynamic. The graph is then run in ONNX Runtime on sample inputs and compared
with the PyTorch model (1e-4), so a graph that computes something else is never written. With
``quantize``, ONNX Runtime's dynamic int8 quantization writes ``model_quantized.onnx`` beside it
(weights int8, activations quantized per batch: faster, slightly approximate; measure its accuracy).

Inputs are the tokenizer's ``input_ids``, ``attention_mask`` (and ``token_type_ids`` where the model
takes them); outputs are named as in ``transformers``: ``logits``, or ``start_logits``/``end_logits``
(question answering), or ``last_hidden_state`` (a bare encoder).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from softprompt.core.constants import ONNX_NAME, ONNX_QUANTIZED_NAME
from softprompt.hub.merged import quiet_progress
from softprompt.models import backbone

__all__ = ["check_onnx_exportable", "export_folder_to_onnx", "onnx_output_names"]

_PARITY = 1e-4  # ONNX Runtime against PyTorch on the sample inputs, max abs difference


def check_onnx_exportable(model: nn.Module) -> None:
    """Refuse a language model: its ``generate`` loop needs a key/value-cache graph this export does not write.

    Raises:
        ValueError: ``model`` generates text.
    """
    if backbone.generates_text(model):
        raise ValueError(
            f"{type(model).__name__} is a language model: ONNX export covers encoders and classifiers; serve the merged "
            "folder (export_merged) with transformers' generate, vLLM or TGI instead"
        )


def onnx_output_names(model: nn.Module) -> tuple[str, ...]:
    """The outputs the graph returns for ``model``'s head.

    Examples:
        >>> onnx_output_names(BertForQuestionAnswering(config))  # doctest: +SKIP
        ('start_logits', 'end_logits')
    """
    name = type(model).__name__
    if name.endswith("ForQuestionAnswering"):
        return ("start_logits", "end_logits")
    if name.endswith(("ForSequenceClassification", "ForTokenClassification")):
        return ("logits",)
    return ("last_hidden_state",)


class _Graph(nn.Module):
    """The model with named tensor inputs and a tuple of named outputs (what ``torch.export`` traces)."""

    def __init__(self, model: nn.Module, outputs: tuple[str, ...], segments: bool) -> None:
        super().__init__()
        self.model, self.outputs, self.segments = model, outputs, segments

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.segments:
            kwargs["token_type_ids"] = token_type_ids
        out = self.model(**kwargs, return_dict=True)
        return tuple(out[name] for name in self.outputs)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters' progress lines, warnings and log records (torchvision ops skipped, "consider
    pre-processing") kept off the caller's screen while they run; errors still raise."""
    root = logging.getLogger()
    levels = {logger: logger.level for logger in (root, logging.getLogger("torch.onnx"))}
    with quiet_progress(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for logger in levels:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in levels.items():
                logger.setLevel(level)


def _sample(tokenizer: Any, segments: bool) -> dict[str, torch.Tensor]:
    """Two padded rows of different lengths, as the tokenizer makes them."""
    enc = tokenizer(["a b c d e f", "a"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if segments else [])
    return {k: enc[k] if k in enc else torch.zeros_like(enc["input_ids"]) for k in names}


def export_folder_to_onnx(folder: str | Path, *, quantize: bool = False) -> Path:
    """Write ``model.onnx`` (and with ``quantize``, ``model_quantized.onnx``) into a merged model folder.

    Args:
        folder: A folder written by :func:`softprompt.hub.merged.write_merged_folder` (or any
            ``transformers`` encoder / classifier folder).
        quantize: Also write the int8 dynamically quantized graph.

    Returns:
        The path of ``model.onnx``.

    Raises:
        ImportError: ``onnxscript`` or ``onnxruntime`` is missing (``pip install softprompt[onnx]``).
        ValueError: a language model; a graph whose ONNX Runtime outputs differ from PyTorch's.

    Examples:
        >>> export_folder_to_onnx("sentiment-model", quantize=True)  # doctest: +SKIP
        PosixPath('sentiment-model/model.onnx')
    """
    try:
        import onnxruntime
        import onnxscript  # noqa: F401  (torch.onnx's dynamo exporter needs it)
    except ImportError as exc:
        raise ImportError(
            f"ONNX export needs onnx, onnxscript and onnxruntime: pip install 'softprompt[onnx]' ({exc})"
        ) from exc
    import transformers

    folder = Path(folder)
    config = transformers.AutoConfig.from_pretrained(folder)
    model_class = getattr(transformers, (config.architectures or ["AutoModel"])[0])
    with _quiet():
        model = model_class.from_pretrained(folder, dtype=torch.float32).eval()
    check_onnx_exportable(model)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    segments = "token_type_ids" in tokenizer.model_input_names and backbone.forward_accepts(
        model, "token_type_ids"
    )
    outputs = onnx_output_names(model)
    sample = _sample(tokenizer, segments)
    graph = _Graph(model, outputs, segments)
    batch, length = torch.export.Dim("batch"), torch.export.Dim("sequence")
    path = folder / ONNX_NAME
    with _quiet(), torch.no_grad():
        torch.onnx.export(
            graph, (), str(path), kwargs=sample, input_names=list(sample), output_names=list(outputs),
            dynamic_shapes={k: {0: batch, 1: length} for k in sample}, dynamo=True, external_data=False,
        )  # fmt: skip
    check = tokenizer(["the a b", "c d e f g h i j", "k"], padding=True, return_tensors="pt")
    check = {k: check[k] if k in check else torch.zeros_like(check["input_ids"]) for k in sample}
    with torch.no_grad():
        expected = graph(**check)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(list(outputs), {k: v.numpy() for k, v in check.items()})
    worst = max(float((torch.from_numpy(g) - e).abs().max()) for g, e in zip(got, expected))
    if not worst <= _PARITY:
        path.unlink()
        raise ValueError(
            f"the ONNX graph's outputs differ from the model's by {worst:.3g} (> {_PARITY}); not written"
        )
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with _quiet():
            quantize_dynamic(str(path), str(folder / ONNX_QUANTIZED_NAME), weight_type=QuantType.QInt8)
    return path
