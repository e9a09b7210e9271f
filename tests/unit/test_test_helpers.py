"""Shared test helpers live in conftest.py files or helper modules, never in a test module another one
imports (importing a test module collects its tests twice and ties two suites together), and the suite
waits in one way: `tests/waiting.py`'s `wait_for`."""

from __future__ import annotations

import ast
from pathlib import Path

from retail.settings import PROJECT_ROOT

TESTS = PROJECT_ROOT / "tests"
SOURCES = sorted(TESTS.rglob("*.py"))


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append("." * node.level + node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return names


def test_no_test_module_imports_another() -> None:
    offenders = {
        str(path.relative_to(TESTS)): module
        for path in SOURCES
        for module in imported_modules(path)
        if module.rsplit(".", 1)[-1].startswith("test_")
    }
    assert not offenders, f"move these helpers to a conftest.py or a helper module: {offenders}"


def test_one_wait_for() -> None:
    definitions = [
        str(path.relative_to(TESTS))
        for path in SOURCES
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and node.name == "wait_for"
    ]
    assert definitions == ["waiting.py"], definitions
