"""`ml.cli` (mounted as `retail ml`): runs the jobs against the settings' database and reports each run."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from typer.testing import CliRunner

from ml.cli import app
from ml.runs import RunRecord
from retail.settings import Settings, get_settings
from stack.airflow import retail_environment

pytestmark = pytest.mark.integration


@pytest.fixture
def ml_environment(ml_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for name, value in retail_environment(ml_settings).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield ml_settings
    get_settings.cache_clear()


def test_run_one_job_prints_its_run(
    ml_environment: Settings, first_runs: dict[str, RunRecord], ml_db: psycopg.Connection
) -> None:
    result = CliRunner().invoke(app, ["run", "--only", "rules", "--json"])
    assert result.exit_code == 0, result.output
    [summary] = [json.loads(line) for line in result.output.splitlines()]
    assert summary["kind"] == "association_rules" and summary["status"] == "succeeded"
    assert summary["rule_count"] == first_runs["association_rules"].rule_count
    assert ml_db.execute(
        "select run_id::text from ml.latest_runs where kind = 'association_rules'"
    ).fetchone() == (summary["run_id"],)


def test_unreachable_database_is_one_error_line(
    ml_environment: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETAIL_PG_PORT", "1")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot connect to PostgreSQL")
