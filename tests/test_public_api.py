"""The public API does not move: every public name of ``softprompt``, ``softprompt.finetune`` and ``softprompt.data``,
with its signature (and a class's public methods'), against the checked-in ``tests/public_api.txt``.

A deliberate change updates the file: ``python -m tests.test_public_api > tests/public_api.txt``, and the diff
shows what users will see. The 0.x module paths (``softprompt.prompt_file``...) still import.
"""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import softprompt
from softprompt import _legacy

API_FILE = Path(__file__).with_name("public_api.txt")
MODULES = ("softprompt", "softprompt.finetune", "softprompt.data")


def _signature(obj: object) -> str:
    try:
        return str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "(...)"


def render_api() -> str:
    """One line per public name (and per public method or property of a public class), sorted."""
    lines = []
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in sorted(module.__all__):
            obj = getattr(module, name)
            where = f"{module_name}.{name}"
            if inspect.isclass(obj):
                lines.append(f"class {where}{_signature(obj)}")
                for member, value in sorted(vars_of(obj).items()):
                    if isinstance(value, property):
                        lines.append(f"  property {where}.{member}")
                    elif callable(value):
                        lines.append(f"  def {where}.{member}{_signature(getattr(obj, member))}")
            elif callable(obj):
                lines.append(f"def {where}{_signature(obj)}")
            else:
                lines.append(f"{type(obj).__name__} {where}")
    return "\n".join(lines) + "\n"


def vars_of(cls: type) -> dict[str, object]:
    """Public attributes a class defines itself or takes from its softprompt bases (not from torch or transformers)."""
    out: dict[str, object] = {}
    for base in reversed(cls.__mro__):
        if base.__module__.startswith("softprompt"):
            out.update({k: v for k, v in vars(base).items() if not k.startswith("_")})
    return out


def test_public_names_and_signatures_are_pinned() -> None:
    assert render_api() == API_FILE.read_text(encoding="utf-8"), (
        "the public API changed; if on purpose, regenerate tests/public_api.txt (see this module's docstring)"
    )


def test_all_is_the_export_table_and_every_name_imports() -> None:
    assert softprompt.__all__ == sorted(softprompt.__all__)
    for name in softprompt.__all__:
        assert getattr(softprompt, name) is not None


def test_the_type_checking_imports_mirror_the_export_table() -> None:
    source = Path(softprompt.__file__).read_text(encoding="utf-8")
    block = source[source.index("if TYPE_CHECKING:") :]
    for name, module in softprompt._EXPORTS.items():
        assert f"from {module} import" in block and name in block, name


@pytest.mark.parametrize("old", sorted(_legacy.MOVED_MODULES))
def test_old_module_paths_import_the_new_modules_with_a_warning(old: str) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match="moved to"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(_legacy.MOVED_MODULES[old])


def test_old_paths_keep_their_names() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from softprompt.peft_interop import export_peft_adapter, import_peft_adapter, load_peft_adapter
        from softprompt.prompt_file import PromptFile, read_prompt_file
    from softprompt.inference import predict, predict_logits
    from softprompt.wrapper import SoftPromptWrapper

    assert SoftPromptWrapper is softprompt.SoftPromptWrapper
    assert (predict, predict_logits) == (softprompt.predict, softprompt.predict_logits)
    assert (PromptFile, read_prompt_file) == (softprompt.PromptFile, softprompt.read_prompt_file)
    assert export_peft_adapter is softprompt.export_peft_adapter
    assert (import_peft_adapter, load_peft_adapter) == (
        softprompt.import_peft_adapter,
        softprompt.load_peft_adapter,
    )
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        softprompt.no_such_name


def test_console_script_and_python_m_entry_points() -> None:
    for argv in (["-m", "softprompt", "--version"], ["-m", "softprompt.cli", "--version"]):
        out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, check=True, timeout=120)
        assert out.stdout.strip() == f"softprompt {softprompt.__version__}"


if __name__ == "__main__":
    sys.stdout.write(render_api())
