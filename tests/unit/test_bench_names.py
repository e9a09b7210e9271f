"""Bench scripts run as files, so bench/ comes first on sys.path: a script named like a package would
shadow it for every import of that run. Their names are kept clear of packages, and no script edits
sys.path to work around one."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from retail.settings import PROJECT_ROOT

BENCH_SCRIPTS = sorted((PROJECT_ROOT / "bench").glob("*.py"))
PATH_EDIT = re.compile(r"sys\.path\s*(\[|=|\.(pop|insert|append|remove|extend)\b)")


def test_bench_scripts_are_found() -> None:
    assert len(BENCH_SCRIPTS) >= 5, BENCH_SCRIPTS


@pytest.mark.parametrize("script", BENCH_SCRIPTS, ids=lambda path: path.name)
def test_bench_script_shadows_no_package(script: Path) -> None:
    project_folders = {path.name for path in PROJECT_ROOT.iterdir() if path.is_dir()}
    assert script.stem not in project_folders, f"rename {script.name}: it shadows the {script.stem}/ package"
    assert importlib.util.find_spec(script.stem) is None, (
        f"rename {script.name}: it shadows the installed module {script.stem!r}"
    )


@pytest.mark.parametrize("script", BENCH_SCRIPTS, ids=lambda path: path.name)
def test_bench_script_leaves_sys_path_alone(script: Path) -> None:
    edits = [line for line in script.read_text().splitlines() if PATH_EDIT.search(line)]
    assert not edits, f"{script.name} edits sys.path: {edits}"
