"""`export_merged` and `export_onnx` for :class:`~softprompt.SoftPromptWrapper`: serve a prompt without softprompt.

``export_merged`` writes a prompt into a plain model folder (:mod:`softprompt.hub.merged`);
``export_onnx`` then exports that folder to ONNX (:mod:`softprompt.hub.onnx_export`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from softprompt.hub.merged import write_merged_folder

if TYPE_CHECKING:
    from torch import nn


__all__ = ["ExportMixin"]


class ExportMixin:
    """Exports of one prompt to a model folder that runs without softprompt."""

    model: nn.Module
    tokenizer: Any
    active_prompt: str
    _special_ids: set[int]

    def export_merged(
        self, folder: str | os.PathLike[str], *, prompt: str | None = None, overwrite: bool = False
    ) -> Path:
        """Write the prompt merged into a plain ``transformers`` model folder, loadable without softprompt.

        The prompt becomes K new tokens (``<softprompt_0>`` ..) whose input embeddings are its vectors;
        the folder's tokenizer inserts them where the wrapper splices the prompt; the trained head,
        class names and a calibrated temperature are folded into the model. ``AutoModelFor...``,
        ``AutoTokenizer`` and ``pipeline(...)`` load it as any model folder, and give this wrapper's
        logits (see docs/serving.md).

        Args:
            folder: The folder to create (written whole, then moved into place).
            prompt: Which prompt (default: the active one).
            overwrite: Replace an existing non-empty folder.

        Returns:
            The folder.

        Raises:
            ValueError: a deep prompt (it cannot be held by input tokens), an int8-quantized backbone, no
                or a slow tokenizer, a non-empty folder without ``overwrite``.
            KeyError: no prompt named ``prompt``.

        Examples:
            >>> folder = wrapper.export_merged("sentiment-model")
            >>> from transformers import pipeline
            >>> pipeline("text-classification", model="sentiment-model")("A superb product.")
            [{'label': ..., 'score': ...}]
        """
        return self._write_merged(folder, prompt, overwrite, then=None)

    def _write_merged(
        self,
        folder: str | os.PathLike[str],
        prompt: str | None,
        overwrite: bool,
        then: Callable[[Path], Any] | None,
    ) -> Path:
        from softprompt.version import __version__

        slot = self.slot(prompt)  # type: ignore[attr-defined]
        name = self.active_prompt if prompt is None else prompt
        info = {"base_model": self.prompt_file(name).base_model, "softprompt_version": __version__}  # type: ignore[attr-defined]
        return write_merged_folder(
            self.model, slot, self.tokenizer, folder, name=name, special_ids=self._special_ids, info=info,
            overwrite=overwrite, then=then,
        )  # fmt: skip

    def export_onnx(
        self,
        folder: str | os.PathLike[str],
        *,
        prompt: str | None = None,
        quantize: bool = False,
        overwrite: bool = False,
    ) -> Path:
        """:meth:`export_merged`, plus ``model.onnx`` (and ``model_quantized.onnx``, int8) in the same folder.

        Encoders (sequence and token classification, question answering, bare) and decoder
        classifiers; language models are refused (serve the merged folder's ``generate`` instead).

        Args:
            folder: The folder to create.
            prompt: Which prompt (default: the active one).
            quantize: Also write an int8 dynamically quantized ``model_quantized.onnx``.
            overwrite: Replace an existing non-empty folder.

        Returns:
            The folder.

        Raises:
            ValueError: what :meth:`export_merged` refuses; a language model.
            ImportError: ``onnx``/``onnxscript``/``onnxruntime`` not installed (``pip install softprompt[onnx]``).

        Examples:
            >>> folder = wrapper.export_onnx("sentiment-onnx", quantize=True)
            >>> sorted(p.name for p in folder.glob("*.onnx"))
            ['model.onnx', 'model_quantized.onnx']
        """
        from softprompt.hub.onnx_export import check_onnx_exportable, export_folder_to_onnx

        check_onnx_exportable(self.model)
        return self._write_merged(
            folder, prompt, overwrite, then=lambda stage: export_folder_to_onnx(stage, quantize=quantize)
        )
