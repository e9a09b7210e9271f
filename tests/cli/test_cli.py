"""The `retail` CLI: user-fixable errors are one line and exit 1, commands drive the real stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retail.settings import Settings
from stack.cli import app
from tests.scratch import free_port

runner = CliRunner()


@pytest.fixture
def private_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point the CLI at a state folder and ports of its own."""
    monkeypatch.setenv("RETAIL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("RETAIL_PG_PORT", str(free_port()))
    monkeypatch.setenv("RETAIL_KAFKA_PORT", str(free_port()))
    for name in ("RETAIL_PG_URL", "RETAIL_KAFKA_BOOTSTRAP"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "state"


def test_invalid_setting_stops_with_one_line(private_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETAIL_KAFKA_PORT", "ninety")
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: invalid setting RETAIL_KAFKA_PORT='ninety': Input should be a valid integer, unable to parse "
        "string as an integer; fix it in the environment or .env (see .env.example)"
    ]


def test_status_when_nothing_runs(private_env: Path) -> None:
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert [line.split()[:2] for line in lines] == [["postgres", "down"], ["kafka", "down"]]
    assert "no data directory" in lines[0]


def test_down_when_nothing_runs(private_env: Path) -> None:
    result = runner.invoke(app, ["down"])
    assert (result.exit_code, result.output.strip()) == (0, "Nothing was running.")


def test_logs_of_unknown_service(private_env: Path) -> None:
    result = runner.invoke(app, ["logs", "zookeeper"])
    assert result.exit_code == 1
    assert result.output.strip() == "error: no service named 'zookeeper'; choose one of: postgres, kafka"


def test_migrate_without_a_database_says_how_to_start_one(private_env: Path) -> None:
    result = runner.invoke(app, ["db", "migrate"])
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: cannot connect to PostgreSQL at 127.0.0.1:")
    assert line.endswith("start it with `retail up`, or point RETAIL_PG_URL at a running server")


@pytest.mark.integration
def test_up_status_logs_down(private_env: Path) -> None:
    try:
        up = runner.invoke(app, ["up"])
        assert up.exit_code == 0, up.output
        assert "Platform up in" in up.output and "psql postgresql://retail_analyst:" in up.output
        status = runner.invoke(app, ["status"])
        assert [line.split()[:2] for line in status.output.strip().splitlines()] == [
            ["postgres", "up"],
            ["kafka", "up"],
        ]
        again = runner.invoke(app, ["up"])
        assert again.exit_code == 0 and "postgres: already running" in again.output
        logs = runner.invoke(app, ["logs", "kafka", "-n", "20"])
        assert logs.exit_code == 0 and "tansu broker" in logs.output
        migrate = runner.invoke(app, ["db", "migrate"])
        assert (migrate.exit_code, migrate.output.strip()) == (0, "Database is up to date.")
    finally:
        down = runner.invoke(app, ["down"])
    assert down.exit_code == 0 and "data kept in" in down.output


def test_platform_fixture_is_not_touched_by_cli_tests(platform: Settings) -> None:
    """The CLI tests above use their own ports; the shared stack keeps running."""
    from stack import stack

    assert {component.state for component in stack.status(platform)} == {"up"}


def test_secrets_are_generated_once(private_env: Path) -> None:
    first = runner.invoke(app, ["secrets"])
    assert first.exit_code == 0 and "mode 0600" in first.output
    content = (private_env / "secrets.env").read_text()
    assert {line.split("=")[0] for line in content.splitlines()} >= {
        "RETAIL_PG_ADMIN_PASSWORD",
        "RETAIL_PG_WRITER_PASSWORD",
        "RETAIL_PG_ANALYST_PASSWORD",
    }
    assert runner.invoke(app, ["secrets"]).exit_code == 0
    assert (private_env / "secrets.env").read_text() == content


def test_dbt_arguments_pass_through(private_env: Path, capfd: pytest.CaptureFixture[str]) -> None:
    result = runner.invoke(app, ["dbt", "ls", "--resource-type", "model", "--output", "name", "--quiet"])
    printed = result.output + capfd.readouterr().out
    assert result.exit_code == 0, printed
    assert {"fct_sales", "dim_customers", "fct_product_metrics_minute"} <= set(printed.split())
    assert runner.invoke(app, ["dbt", "ls", "--select", "no_such_model+", "--no-such-flag"]).exit_code == 1


@pytest.mark.integration
def test_demo_loads_history_once(private_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETAIL_DEMO_DAYS", "0.5")
    try:
        first = runner.invoke(app, ["demo"])
        assert first.exit_code == 0, first.output
        assert "Platform up in" in first.output and "Backfilling 0.5 days" in first.output
        summary = json.loads((private_env / "demo-loaded.json").read_text())
        assert summary["transactions"] > 0 and summary["failed"] == 0
        again = runner.invoke(app, ["demo"])
        assert again.exit_code == 0 and "not sending it twice" in again.output
        assert "speed layer is off" in again.output
    finally:
        runner.invoke(app, ["down"])
