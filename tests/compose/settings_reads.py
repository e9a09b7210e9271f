"""Which settings a container's code reads: derived from the code and the settings model, not listed.

A container's entry point (its command) names modules; their project-local import closure is parsed
(never imported) and every attribute name it reads is kept. Properties of `Settings` (`writer_dsn`,
`pg_host_port`...) expand to the fields their bodies read, so reading `settings.writer_dsn` counts as
reading `pg_writer_password`. Code that walks the settings' `model_fields` reads every field.
Over-approximate on purpose (any `.host` counts as `host`): a setting flagged as unread is certainly unread.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from retail.settings import PROJECT_ROOT, Settings

PACKAGES = ("retail", "stack", "producer", "spark", "dashboard", "ml", "dags", "dimensions")
SETTINGS_MODULE = "retail.settings"


def module_path(name: str) -> Path | None:
    base = PROJECT_ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    return ".".join(path.resolve().relative_to(PROJECT_ROOT).with_suffix("").parts)


@functools.cache
def _tree(name: str) -> ast.Module:
    path = module_path(name)
    assert path is not None, name
    return ast.parse(path.read_text(encoding="utf-8"))


def imported_modules(tree: ast.AST) -> set[str]:
    """Project modules an AST imports, at any depth (imports inside functions count)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name.split(".")[0] in PACKAGES and module_path(name) is not None:
                found.add(name)
    return found


def closure(entries: set[str]) -> set[str]:
    seen: set[str] = set()
    pending = [name for name in entries if module_path(name) is not None]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        # A package's __init__ runs before its modules.
        parent = name.rpartition(".")[0]
        pending += [parent] if parent and module_path(parent) else []
        pending += sorted(imported_modules(_tree(name)) - seen)
    return seen


def _is_getattr(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"


def _attribute_reads(tree: ast.AST, fields: set[str]) -> set[str]:
    reads: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            reads.add(node.attr)
            if node.attr == "model_fields" and "settings" in ast.unparse(node.value).lower():
                reads |= fields
        elif _is_getattr(node) and len(node.args) >= 2:
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                reads.add(name.value)
            elif isinstance(name, ast.JoinedStr) and isinstance(name.values[0], ast.Constant):
                prefix = str(name.values[0].value)
                reads |= {field for field in fields if field.startswith(prefix)}
    return reads


@functools.cache
def _settings_members() -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    """Per member of Settings (property or method), the `self.X` names it reads; and what validators
    (run on every construction) read."""
    tree = _tree(SETTINGS_MODULE)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == Settings.__name__)
    members: dict[str, frozenset[str]] = {}
    always: set[str] = set()
    for node in cls.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        reads = frozenset(
            sub.attr
            for sub in ast.walk(node)
            if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == "self"
        )
        members[node.name] = reads
        decorators = {ast.unparse(d).split("(")[0] for d in node.decorator_list}
        if decorators & {"model_validator", "field_validator"}:
            always |= reads
    return members, frozenset(always)


def expand(names: set[str]) -> set[str]:
    """Settings fields behind the names read: fields themselves, and what properties read (transitively)."""
    fields = set(Settings.model_fields)
    members, always = _settings_members()
    result = set(always)
    pending = list(names | always)
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in fields:
            result.add(name)
        pending += sorted(members.get(name, ()))
    return result & fields


def settings_read(modules: set[str], extra_code: str = "") -> set[str]:
    """Settings fields read by these modules' import closure (and by a snippet, e.g. a `python -c`)."""
    fields = set(Settings.model_fields)
    snippet = ast.parse(extra_code) if extra_code else ast.parse("")
    names = _attribute_reads(snippet, fields)
    for name in closure(modules | imported_modules(snippet)):
        if name != SETTINGS_MODULE:
            names |= _attribute_reads(_tree(name), fields)
    return expand(names)
