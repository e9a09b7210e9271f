"""`retail produce ...` through Typer's CliRunner, with settings from RETAIL_* variables like a user's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from producer.cli import app
from retail.settings import Settings, get_settings

SAMPLE = Path(__file__).resolve().parents[2] / "producer" / "data" / "sample_sales.csv"
runner = CliRunner()
Consume = Callable[[Settings, str], list]

pytestmark = pytest.mark.integration


@pytest.fixture
def cli_settings(topics: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Settings]:
    """The environment a user would set to point `retail produce` at the test broker and topics."""
    monkeypatch.setenv("RETAIL_KAFKA_BOOTSTRAP", topics.bootstrap_servers)
    monkeypatch.setenv("RETAIL_TRANSACTIONS_TOPIC", topics.transactions_topic)
    monkeypatch.setenv("RETAIL_REFUNDS_TOPIC", topics.refunds_topic)
    monkeypatch.setenv("RETAIL_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def test_backfill_command_reports_counts(cli_settings: Settings, consume: Consume) -> None:
    result = runner.invoke(
        app,
        ["backfill", "--days", "1", "--customers", "300", "--workers", "1", "--no-progress",
         "--malformed", "invalid_json=2", "--malformed", "unknown_store=1", "--end", "2026-11-02"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "backfill: " in result.output
    assert "malformed: invalid_json 2, unknown_store 1" in result.output
    reported = int(result.output.split("transactions ")[1].split(",")[0])
    assert len(consume(cli_settings, cli_settings.transactions_topic)) == reported + 3


def test_replay_command_prints_what_it_skipped(cli_settings: Settings) -> None:
    result = runner.invoke(
        app, ["replay", "--csv", str(SAMPLE), "--timestamp-format", "%m/%d/%Y %H:%M", "--speed", "max"]
    )
    assert result.exit_code == 0, result.output
    assert "6 lines skipped: unknown product 85123A (2 lines" in result.output
    rejects = cli_settings.state_dir / "replay" / "sample_sales.rejects.csv"
    assert f"skipped rows written to {rejects}" in result.output
    assert rejects.is_file()


def test_replay_command_explains_a_bad_mapping(cli_settings: Settings) -> None:
    result = runner.invoke(app, ["replay", "--csv", str(SAMPLE), "--map", "StockCode=sku"])
    assert result.exit_code == 1
    assert "error: --map 'StockCode=sku': unknown field 'sku'" in result.output


def test_live_command_runs_for_a_duration(cli_settings: Settings) -> None:
    result = runner.invoke(app, ["live", "--rate", "20", "--duration", "1", "--seed", "4"])
    assert result.exit_code == 0, result.output
    assert "live: " in result.output
    assert "transactions " in result.output


def test_ctrl_c_stops_live_mode_after_flushing(cli_settings: Settings, consume: Consume) -> None:
    env = {
        **os.environ,
        "RETAIL_KAFKA_BOOTSTRAP": cli_settings.bootstrap_servers,
        "RETAIL_TRANSACTIONS_TOPIC": cli_settings.transactions_topic,
        "RETAIL_REFUNDS_TOPIC": cli_settings.refunds_topic,
        "RETAIL_STATE_DIR": str(cli_settings.state_dir),
    }
    command = [sys.executable, "-c", "from producer.cli import app; app()", "live", "--rate", "30"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        assert "Ctrl-C to stop" in process.stdout.readline()
        # Ctrl-C once the producer has reported sending (its first "... so far" line, after 5 s).
        progress = process.stdout.readline()
        assert int(progress.split()[0].replace(",", "")) > 0, progress
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "live (stopped by user): " in output
    sent = int(output.split(f"topic {cli_settings.transactions_topic}: ")[1].split()[0].replace(",", ""))
    assert sent > 0
    assert len(consume(cli_settings, cli_settings.transactions_topic)) == sent
