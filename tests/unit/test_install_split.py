"""The install split: `make demo` runs the platform from .venv without root, apt or sudo; only `make test`
installs the tests' system packages, and fails with one line naming them when it cannot.

The Makefile is read by make itself (`make -n -B`: every command of a target's chain, none run)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from retail.settings import PROJECT_ROOT

SYSTEM_DEPS_SCRIPT = PROJECT_ROOT / "scripts" / "install-system-deps.sh"
ROOT_ONLY_WORDS = ("install-system-deps", "sudo", "apt-get", "apt ", "dpkg", "brew ")


def planned_commands(target: str) -> str:
    """What `make <target>` would run from scratch (no stamp, no venv), without running any of it."""
    result = subprocess.run(
        ["make", "-n", "-B", target], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    return result.stdout


@pytest.mark.parametrize("target", ["install", "demo"])
def test_demo_chain_never_needs_root(target: str) -> None:
    commands = planned_commands(target)
    assert "retail" in commands or "uv pip install" in commands  # the chain was really read
    assert [word for word in ROOT_ONLY_WORDS if word in commands] == []


def test_test_target_installs_the_system_packages() -> None:
    commands = planned_commands("test")
    assert "bash scripts/install-system-deps.sh" in commands
    assert commands.index("install-system-deps") < commands.index("pytest")


def _bare_path(tmp_path: Path, tools: tuple[str, ...]) -> str:
    """A PATH holding only the given tools: no dpkg-query, apt-get, docker or sudo."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in tools:
        found = shutil.which(tool)
        assert found, f"{tool} is needed by this test"
        (folder / tool).symlink_to(found)
    return str(folder)


def test_system_deps_without_apt_fail_in_one_line(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    assert bash
    result = subprocess.run(
        [bash, str(SYSTEM_DEPS_SCRIPT)],
        env={"PATH": _bare_path(tmp_path, ("grep", "id")), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "docker-compose chromium chromium-driver" in lines[0]
    assert "package manager" in lines[0]


def test_system_deps_without_root_fail_in_one_line_with_the_command(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    assert bash
    bare = Path(_bare_path(tmp_path, ("grep",)))
    # A non-root user (this test also runs as root in CI) on Debian without sudo: apt-get is there.
    (bare / "id").write_text("#!/bin/sh\necho 1000\n")
    (bare / "apt-get").write_text("#!/bin/sh\nexit 0\n")
    for stub in ("id", "apt-get"):
        (bare / stub).chmod(0o755)
    result = subprocess.run(
        [bash, str(SYSTEM_DEPS_SCRIPT)], env={"PATH": str(bare)}, capture_output=True, text=True
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "as root run: apt-get update && apt-get install -y --no-install-recommends" in lines[0]
    assert "docker-compose chromium chromium-driver" in lines[0]
