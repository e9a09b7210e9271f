"""The configuration `retail up` hands to Airflow: tasks rebuild the same settings, secrets stay out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retail.settings import GENERATED_PASSWORD_FIELDS, load_settings
from stack import airflow
from stack.secrets import ensure_secrets


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith(("RETAIL_", "AIRFLOW")) or name == "JAVA_HOME":
            monkeypatch.delenv(name)


def test_tasks_rebuild_the_settings_of_the_stack(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ensure_secrets(
        load_settings(
            state_dir=tmp_path / "state", pg_port=25432, kafka_port=29092, airflow_port=28080, _env_file=None
        )
    )
    for name, value in airflow.environment(settings).items():
        monkeypatch.setenv(name, value)
    in_task = load_settings(_env_file=None)
    assert in_task.model_dump() == settings.model_dump()  # secrets included: read from secrets.env


def test_no_secret_reaches_the_supervisord_environment(clean_env: None, tmp_path: Path) -> None:
    settings = ensure_secrets(load_settings(state_dir=tmp_path / "state", _env_file=None))
    environment = airflow.environment(settings)
    for name in GENERATED_PASSWORD_FIELDS:
        secret = getattr(settings, name).get_secret_value()
        assert all(secret not in value for value in environment.values()), name
    assert environment["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert environment["AIRFLOW_HOME"] == str(tmp_path / "state" / "airflow")
    assert environment["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    # Cosmos's partial-parse and profile cache in the stack's own folder, not the machine-wide /tmp/cosmos.
    assert environment["AIRFLOW__COSMOS__CACHE_DIR"] == str(tmp_path / "state" / "cosmos")


def test_login_lines_name_the_ui_and_the_password(clean_env: None, tmp_path: Path) -> None:
    settings = ensure_secrets(load_settings(state_dir=tmp_path / "state", _env_file=None))
    assert settings.airflow_admin_password is not None
    assert airflow.login_lines(settings) == [
        "  Airflow     http://127.0.0.1:18080  (UI and REST API)",
        f"              login: admin / {settings.airflow_admin_password.get_secret_value()}",
    ]


def test_the_airflow_ui_serves_the_dbt_docs_of_the_stack(clean_env: None, tmp_path: Path) -> None:
    settings = ensure_secrets(load_settings(state_dir=tmp_path / "state", _env_file=None))
    airflow.write_config(settings)
    config = (settings.airflow_home / "airflow.cfg").read_text()
    assert "[cosmos]" in config
    line = next(line for line in config.splitlines() if line.startswith("dbt_docs_projects = "))
    projects = json.loads(line.split(" = ", 1)[1])
    assert projects == {"retail": airflow.docs_project(settings)}
    assert projects["retail"]["dir"] == str(tmp_path / "state" / "dbt" / "target")
