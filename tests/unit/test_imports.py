"""The import rules of the layout (README "Folders"), enforced by import-linter contracts (pyproject.toml)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from retail.settings import PROJECT_ROOT

STAGES = ("producer", "spark", "ml", "dashboard", "dimensions", "dags", "stack")
STAGE_IMPORT = re.compile(rf"^\s*(from|import) ({'|'.join(STAGES)})\b", re.MULTILINE)


def test_import_contracts_hold() -> None:
    """Core below independent stages below the composition root and DAGs; the core imports no Airflow,
    Cosmos, Streamlit or Spark (lazy imports inside functions count too)."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_core_source_names_no_stage() -> None:
    """The issue's own check, on the text: no line of the core imports a stage or the composition root."""
    offending = [
        f"{path.relative_to(PROJECT_ROOT)}: {match.group(0).strip()}"
        for path in sorted((PROJECT_ROOT / "retail").rglob("*.py"))
        for match in STAGE_IMPORT.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offending == []


def test_every_name_the_benches_import_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    """The benches run outside the suite, and many import inside functions: a renamed function (the
    dashboard's consumer-lag cache once) broke a bench unseen. Every `from <project module> import name`
    in bench/ must resolve."""
    monkeypatch.syspath_prepend(str(PROJECT_ROOT))  # the benches run as `python -m bench.x` from there
    own = {"retail", "stack", "dags", "producer", "spark", "ml", "dashboard", "dimensions", "bench", "tests"}
    missing = []
    for path in sorted((PROJECT_ROOT / "bench").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.split(".")[0] in own:
                module = importlib.import_module(node.module)
                missing += [
                    f"{path.name}: {node.module}.{alias.name}"
                    for alias in node.names
                    if not hasattr(module, alias.name)
                    and not (
                        hasattr(module, "__path__")
                        and importlib.util.find_spec(f"{node.module}.{alias.name}") is not None
                    )
                ]
    assert missing == []
