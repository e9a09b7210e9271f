"""Module docstrings that name a function or class (`name`, `module.name`, `name()`) name one that
exists, and that production code uses: a docstring that promises a function the code no longer has,
or one only tests call, misleads its reader. Read with `ast`, nothing is imported."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from retail.settings import PROJECT_ROOT

PACKAGES = ("retail", "stack", "producer", "spark", "ml", "dashboard", "dimensions", "dags")
REFERENCE = re.compile(r"``?([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(\(\))?``?")


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


TREES = {
    module_name(path): ast.parse(path.read_text(), filename=str(path))
    for package in PACKAGES
    for path in sorted((PROJECT_ROOT / package).rglob("*.py"))
}


def defined(tree: ast.Module) -> dict[str, ast.AST]:
    """Top-level names of a module (functions, classes, assignments, imports) and `Class.method`."""
    names: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names[node.name] = node
            if isinstance(node, ast.ClassDef):
                for member in node.body:
                    if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
                        names[f"{node.name}.{member.name}"] = member
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    names[target.id] = node
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                names[(alias.asname or alias.name).split(".")[0]] = node
    return names


DEFINED = {module: defined(tree) for module, tree in TREES.items()}
# Every function and class of the project, by name: a bare `name` in a docstring refers to one of them.
CALLABLES = {
    name
    for names in DEFINED.values()
    for name, node in names.items()
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
}
# Names production code refers to (tests and benches left out): a function only they call is unused.
USED = {
    node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else alias.name
    for tree in TREES.values()
    for node in ast.walk(tree)
    if isinstance(node, ast.Name | ast.Attribute | ast.ImportFrom)
    for alias in (node.names if isinstance(node, ast.ImportFrom) else [None])
}


PACKAGE_MODULES = {
    module_name(path) for package in PACKAGES for path in (PROJECT_ROOT / package).rglob("__init__.py")
}


def resolve(reference: str, here: str) -> tuple[str, str, bool] | None:
    """(module, name, strict) a dotted reference points at, or None when it is no project module path (a
    table, a setting, a column). Strict: a `package.module.name` path, which can only mean code; a
    sibling's `module.name` or a package's `package.name` may be a config key or a table of that name."""
    parts = reference.split(".")
    package = here if here in PACKAGE_MODULES else here.rsplit(".", 1)[0]
    for prefix in ("", f"{package}."):
        for cut in range(len(parts), 0, -1):
            module = prefix + ".".join(parts[:cut])
            if module in TREES:
                return module, ".".join(parts[cut:]), not prefix and module not in PACKAGE_MODULES
    return None


def problems(module: str, docstring: str) -> list[str]:
    found: list[str] = []
    for match in REFERENCE.finditer(docstring):
        reference, called = match.group(1), bool(match.group(2))
        if reference in TREES:
            continue  # a module, not a function
        if "." in reference:
            target = resolve(reference, module)
            if target is None:
                continue
            owner, name, strict = target
            if name and name not in DEFINED[owner]:
                if strict or called:
                    found.append(f"`{reference}`: {owner} has no {name}")
                continue
        else:
            name = reference
            if name not in CALLABLES:
                if called:
                    found.append(f"`{reference}()`: no such function in the project")
                continue
        last = name.rsplit(".", 1)[-1]
        if last and last not in USED:
            found.append(f"`{reference}`: only tests use it")
    return found


def test_module_docstrings_name_functions_that_exist_and_are_used() -> None:
    found = {
        module: issues
        for module, tree in TREES.items()
        if (issues := problems(module, ast.get_docstring(tree) or ""))
    }
    assert not found, f"fix these module docstrings: {found}"


def test_the_check_catches_stale_names() -> None:
    assert problems("retail.db", "Uses `retail.settings.get_settings` and `retail.topics`.") == []
    assert problems("retail.db", "`retail.settings.gone` and `gone_too()`, not `raw.products`.") == [
        "`retail.settings.gone`: retail.settings has no gone",
        "`gone_too()`: no such function in the project",
    ]
