"""The import rules of the layout (README "Folders"), enforced by import-linter contracts (pyproject.toml)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
