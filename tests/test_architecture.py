"""The package's layout is its architecture, checked by machine: layer contracts, no circles, small modules,
task branches only in the task table and its families, every constant defined once.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``) and run through ``lint-imports``, the
import-linter command, which reads every import including those under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "softprompt"
MAX_MODULE_LINES = 350
# where a branch on the task may stand: the table, its families, and Task itself
TASK_HOMES = ("softprompt/tasks/", "softprompt/core/task.py")
TASK_BRANCH = re.compile(
    r"\.is_(question_answering|token_level|text_to_label|classification)\b|TaskType\.[A-Z_]+ *(?:[!=]=|\bis\b)|"
    r"\bis(?: not)? TaskType\.[A-Z_]+|\.type\.value *[!=]=|\btask *[!=]= *[\"']"
)
# task checks below the table, each a validation of what a layer stores or refuses, not a dispatch:
# the counts are pinned so that a new branch is a deliberate choice (docs/architecture.md lists them)
ALLOWED_TASK_CHECKS = {
    "softprompt/core/predictions.py": 0,
    "softprompt/data/answers.py": 2,  # question/context/answers columns exist only for question answering
    "softprompt/data/labels.py": 2,  # how a label column is encoded: class ids, 0/1 vectors or floats
    "softprompt/data/loading.py": 5,  # which columns a task's rows have, and their features
    "softprompt/files/checks.py": 1,  # a regression prompt file has exactly one output
    "softprompt/inference/calibration.py": 1,  # temperatures calibrate single-label classifiers only
    "softprompt/hub/merged.py": 1,
    "softprompt/training/head_fit.py": 1,  # a least-squares head start fits regression heads only  # an export folds a temperature into single-label classifiers only
    "softprompt/wrapper/generation.py": 1,  # a language model runs text-to-label prompts only
    "softprompt/wrapper/predict.py": 1,  # ensembles average single-label classifiers only
}


def _modules() -> list[Path]:
    return sorted(
        p
        for p in PACKAGE.rglob("*.py")
        if "metrics/" not in str(p.relative_to(PACKAGE)) or p.parent.name == "metrics"
    )


def test_layer_contracts_hold() -> None:
    """Layers, no circles (at any depth), families independent, nothing below the wrapper imports it."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "import-linter is a dev dependency: pip install -e '.[dev]'"
    out = subprocess.run([exe, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout and "BROKEN" not in out.stdout


def test_layer_contracts_can_fail(tmp_path: Path) -> None:
    """The contracts are not vacuous: a copy of the package where a low layer imports the wrapper breaks them."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    copy = tmp_path / "repo"
    shutil.copytree(PACKAGE, copy / "softprompt", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    target = copy / "softprompt" / "files" / "checks.py"
    target.write_text(target.read_text() + "\nfrom softprompt.wrapper import SoftPromptWrapper  # noqa\n")
    out = subprocess.run(
        [exe, "--no-cache"], cwd=copy, capture_output=True, text=True, timeout=300,
        env={"PYTHONPATH": str(copy), "PATH": str(Path(sys.executable).parent)},
    )  # fmt: skip
    assert out.returncode != 0
    assert "softprompt.files.checks -> softprompt.wrapper" in out.stdout


def code_lines(source: str) -> int:
    """Lines of a module without its docstrings (module, class and function ones): the reference's full
    docstrings (Args, Returns, Raises, Examples) should not push a module to split."""
    tree = ast.parse(source)
    doc_lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(
            node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        ) and ast.get_docstring(node):
            first = node.body[0]
            doc_lines.update(range(first.lineno, first.end_lineno + 1))
    return sum(1 for i, _ in enumerate(source.splitlines(), 1) if i not in doc_lines)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_modules_stay_small_and_open_with_a_docstring(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert code_lines(source) <= MAX_MODULE_LINES, f"{path.name}: split it by concept"
    assert ast.get_docstring(ast.parse(source)), f"{path.name} opens without a docstring"


def test_task_branches_live_in_the_task_table() -> None:
    found: dict[str, int] = {}
    for path in PACKAGE.rglob("*.py"):
        rel = str(path.relative_to(REPO))
        if rel.startswith(TASK_HOMES):
            continue
        code = [line.split("#")[0] for line in path.read_text(encoding="utf-8").splitlines()]
        count = sum(len(TASK_BRANCH.findall(line)) for line in code)
        if count:
            found[rel] = count
    expected = {k: v for k, v in ALLOWED_TASK_CHECKS.items() if v}
    assert found == expected, "a task branch outside softprompt/tasks: add a TaskFamily hook instead"


def test_no_private_name_crosses_a_module() -> None:
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("softprompt"):
                names = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                # a private *module* of the package (softprompt._legacy) is the package's own business
                private = [n for n in names if not (PACKAGE / f"{n}.py").exists()]
                assert not private, f"{path.relative_to(REPO)} imports {private} from {node.module}"


CONSTANTS = ("prompt.safetensors", "adapter_config.json", "adapter_model.safetensors", "softprompt_temperature",
             "training_args.json", "README.md", -100)  # fmt: skip


def _literals(tree: ast.AST) -> list[object]:
    """String constants in code (docstrings left out) and negative integer literals."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }  # fmt: skip
    out: list[object] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            out.append(node.value)
        elif (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)
        ):
            out.append(-node.operand.value)
    return out


@pytest.mark.parametrize("constant", CONSTANTS)
def test_each_constant_is_defined_once(constant: object) -> None:
    """File names, the label padding value and the temperature key: in softprompt.core.constants only."""
    where = [
        str(p.relative_to(REPO))
        for p in PACKAGE.rglob("*.py")
        if p.name != "constants.py" and constant in _literals(ast.parse(p.read_text(encoding="utf-8")))
    ]
    assert not where, f"{constant!r} written out in {where}; import it from softprompt.core.constants"


def test_every_task_type_has_exactly_one_family() -> None:
    from softprompt.core.task import TaskType
    from softprompt.tasks import TASK_FAMILIES

    assert set(TASK_FAMILIES) == set(TaskType)
    for task_type, family in TASK_FAMILIES.items():
        assert task_type in family.task_types, (task_type, family.name)


def test_the_module_map_lists_every_module() -> None:
    """docs/architecture.md's module map names every module of the package (a new one is documented)."""
    doc = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [str(p.relative_to(REPO)) for p in _modules() if f"`{p.relative_to(REPO)}`" not in doc]
    assert not missing, f"add to docs/architecture.md's module map: {missing}"
