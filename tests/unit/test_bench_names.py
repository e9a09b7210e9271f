"""Benches run as modules from the repository root (`python -m bench.ml_jobs`), so the project's
packages, `tests.scratch` and sibling scripts (`from bench import dbt_build`) import as they are. No
script edits sys.path or loads a sibling by file path, and none is named like a stage package (run as
a file, it would shadow that package for the whole run)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from retail.settings import PROJECT_ROOT

BENCH_SCRIPTS = sorted((PROJECT_ROOT / "bench").glob("*.py"))
PATH_HACKS = re.compile(
    r"sys\.path\s*(\[|=|\.(pop|insert|append|remove|extend)\b)|spec_from_file_location|\bimportlib\.util\b"
)


def test_bench_scripts_are_found() -> None:
    assert len(BENCH_SCRIPTS) >= 5, BENCH_SCRIPTS


@pytest.mark.parametrize("script", BENCH_SCRIPTS, ids=lambda path: path.name)
def test_bench_script_shadows_no_package(script: Path) -> None:
    project_folders = {path.name for path in PROJECT_ROOT.iterdir() if path.is_dir()}
    assert script.stem not in project_folders, f"rename {script.name}: it shadows the {script.stem}/ package"


@pytest.mark.parametrize("script", BENCH_SCRIPTS, ids=lambda path: path.name)
def test_bench_script_imports_without_path_hacks(script: Path) -> None:
    hacks = [line for line in script.read_text().splitlines() if PATH_HACKS.search(line)]
    assert not hacks, f"{script.name}: run it as `python -m bench.{script.stem}` and import normally: {hacks}"
