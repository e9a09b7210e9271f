"""Least privilege on a real embedded PostgreSQL: the private state folder, the analyst's statement
timeout and its payload-free view of dead letters, the dashboard's pool with per-query timeouts, and
docker compose's database init run by a login that is not a superuser.

    .venv/bin/python -m pytest tests/integration/test_least_privilege.py
"""

from __future__ import annotations

import os
import pwd
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import errors, sql
from typer.testing import CliRunner

from dashboard import db as dashboard_db
from retail.settings import PROJECT_ROOT, Settings, load_settings
from stack.cli import app
from stack.postgres import binaries, run_as_user
from stack.secrets import ensure_secrets
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def assert_private(folder: Path) -> None:
    """0700; as root 0710 with the group of the user the embedded PostgreSQL runs as (traverse only)."""
    mode = folder.stat().st_mode & 0o777
    if run_as_user():
        assert (oct(mode), folder.stat().st_gid) == ("0o710", pwd.getpwnam(run_as_user()).pw_gid)
    else:
        assert oct(mode) == "0o700"


def test_state_folder_and_secrets_are_private_after_every_start(platform: Settings, tmp_path: Path) -> None:
    # `retail up` (the platform fixture) left them private, after creating the PostgreSQL cluster.
    assert_private(platform.state_dir)
    assert oct(platform.secrets_file.stat().st_mode & 0o777) == "0o600"
    # A copy or an editor opened them up: the next start closes them again, secrets already present.
    settings = platform.model_copy(update={"state_dir": tmp_path / ".retail"})
    settings.state_dir.mkdir(mode=0o755)
    settings.secrets_file.write_text("RETAIL_PG_WRITER_PASSWORD=kept\n", encoding="utf-8")
    os.chmod(settings.secrets_file, 0o644)
    ensure_secrets(settings)
    assert_private(settings.state_dir)
    assert oct(settings.secrets_file.stat().st_mode & 0o777) == "0o600"


def test_analyst_sessions_have_the_statement_timeout(platform: Settings) -> None:
    with psycopg.connect(platform.analyst_dsn) as conn:
        setting = conn.execute("select setting from pg_settings where name = 'statement_timeout'").fetchone()
        assert setting == (str(round(platform.analyst_statement_timeout_s * 1000)),)
        conn.execute("set statement_timeout = 200")  # the role's value applies; this proves it cancels
        with pytest.raises(errors.QueryCanceled):
            conn.execute("select pg_sleep(30)")


def test_analyst_sees_dead_letters_without_payloads(platform: Settings) -> None:
    topic = f"privacy-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(platform.writer_dsn, autocommit=True) as writer:
        writer.execute(
            "insert into ops.dead_letter (topic, kafka_partition, kafka_offset, reason, error, payload) "
            "values (%s, 0, 1, 'invalid_json', 'not JSON', %s)",
            (topic, b'{"customer_id": "C1"'),
        )
    with psycopg.connect(platform.analyst_dsn, autocommit=True) as analyst:
        with pytest.raises(errors.InsufficientPrivilege):
            analyst.execute("select payload from ops.dead_letter")
        cursor = analyst.execute("select * from ops.dead_letter_redacted where topic = %s", (topic,))
        columns = [column.name for column in cursor.description or []]
        assert cursor.fetchall() and "payload" not in columns and "reason" in columns


@pytest.fixture
def pooled(platform: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    settings = platform.model_copy(update={"dashboard_pool_size": 2, "dashboard_query_timeout_s": 60.0})
    monkeypatch.setattr(dashboard_db, "settings", lambda: settings)
    dashboard_db._pool.clear()
    yield settings
    dashboard_db._pool.clear()


def test_a_blocked_page_does_not_block_the_next_viewer(pooled: Settings, platform: Settings) -> None:
    """One viewer's query waits (on a lock this test holds); another viewer's query still answers."""
    lock_id = 27_014
    outcome: dict[str, object] = {}
    with psycopg.connect(platform.writer_dsn, autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(%s)", (lock_id,))

        def slow_viewer() -> None:
            outcome["slow"] = dashboard_db.read_frame("select pg_advisory_lock(%s) as locked", (lock_id,))

        thread = threading.Thread(target=slow_viewer)
        thread.start()
        try:
            with psycopg.connect(platform.writer_dsn, autocommit=True) as probe:
                waiting = "select count(*) from pg_locks where locktype = 'advisory' and not granted"
                wait_for(
                    lambda: probe.execute(waiting).fetchone() == (1,),
                    timeout_s=120,
                    what="the slow viewer's query to wait on the advisory lock",
                    interval_s=0.1,
                )
            answer = dashboard_db.read_frame("select 42 as answer")
            assert answer["answer"].tolist() == [42]
            assert thread.is_alive()  # the slow page is still waiting: nothing was serialised behind it
        finally:
            holder.execute("select pg_advisory_unlock(%s)", (lock_id,))
            thread.join(timeout=120)
    assert "slow" in outcome


def test_a_query_over_its_timeout_becomes_a_banner(pooled: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    quick = pooled.model_copy(update={"dashboard_query_timeout_s": 0.5})
    monkeypatch.setattr(dashboard_db, "settings", lambda: quick)
    with pytest.raises(dashboard_db.DashboardError, match="RETAIL_DASHBOARD_QUERY_TIMEOUT_S"):
        dashboard_db.read_frame("select pg_sleep(30)")
    # The connection went back to the pool in working order.
    assert dashboard_db.read_frame("select 1 as one")["one"].tolist() == [1]


@pytest.fixture
def compose_database(platform: Settings) -> Iterator[dict[str, str]]:
    """A database initialised like docker compose's postgres volume: docker/postgres/retail-admin.sql run
    by the superuser creates a non-superuser admin. Roles of their own (roles are server-wide)."""
    suffix = uuid.uuid4().hex[:6]
    names = {
        "db": f"compose_{suffix}",
        "admin": f"compose_admin_{suffix}",
        "writer": f"compose_writer_{suffix}",
        "analyst": f"compose_analyst_{suffix}",
        "airflow": f"compose_airflow_{suffix}",
    }
    admin_password = uuid.uuid4().hex
    host, port = platform.pg_host_port
    with psycopg.connect(platform.maintenance_dsn, autocommit=True) as superuser:
        superuser.execute(sql.SQL("create database {}").format(sql.Identifier(names["db"])))
    assert platform.pg_admin_password is not None
    subprocess.run(
        [
            str(binaries() / "psql"),
            "--no-psqlrc",
            "--variable=ON_ERROR_STOP=1",
            f"--host={host}",
            f"--port={port}",
            f"--username={platform.pg_admin_user}",
            f"--dbname={names['db']}",
            f"--set=admin_user={names['admin']}",
            f"--set=admin_password={admin_password}",
            f"--set=db={names['db']}",
            f"--file={PROJECT_ROOT / 'docker' / 'postgres' / 'retail-admin.sql'}",
        ],
        env={**os.environ, "PGPASSWORD": platform.pg_admin_password.get_secret_value()},
        check=True,
        capture_output=True,
        timeout=120,
    )
    yield {**names, "admin_password": admin_password, "host": host, "port": str(port)}
    with psycopg.connect(platform.maintenance_dsn, autocommit=True) as superuser:
        for database in (names["db"], names["airflow"]):
            superuser.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(database)))
        for role in ("writer", "analyst", "airflow", "admin"):
            superuser.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(names[role])))


def test_compose_init_runs_without_a_superuser(compose_database: dict[str, str], tmp_path: Path) -> None:
    names = compose_database
    environment = {
        "RETAIL_STATE_DIR": str(tmp_path / ".retail"),
        "RETAIL_SECRETS_DIR": str(tmp_path / "none"),
        "RETAIL_PG_URL": f"postgresql://{names['admin']}@{names['host']}:{names['port']}/{names['db']}",
        "RETAIL_PG_ADMIN_PASSWORD": names["admin_password"],
        "RETAIL_PG_DATABASE": names["db"],
        "RETAIL_PG_WRITER_USER": names["writer"],
        "RETAIL_PG_WRITER_PASSWORD": uuid.uuid4().hex,
        "RETAIL_PG_ANALYST_USER": names["analyst"],
        "RETAIL_PG_ANALYST_PASSWORD": uuid.uuid4().hex,
        "RETAIL_AIRFLOW_ENABLED": "true",  # tests/conftest.py turns Airflow off by default
        "RETAIL_AIRFLOW_DB_USER": names["airflow"],
        "RETAIL_AIRFLOW_DB_NAME": names["airflow"],
        "RETAIL_AIRFLOW_DB_PASSWORD": uuid.uuid4().hex,
    }
    result = CliRunner().invoke(app, ["db", "init"], env=environment)
    assert result.exit_code == 0, result.output
    settings = load_settings(
        _env_file=None, **{k.removeprefix("RETAIL_").lower(): v for k, v in environment.items()}
    )
    with psycopg.connect(settings.admin_dsn) as conn:
        assert conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone() == (
            False,
        )
    with psycopg.connect(settings.writer_dsn) as writer:
        assert writer.execute("select count(*) > 0 from raw.products").fetchone() == (True,)
        assert writer.execute("select count(*) > 0 from raw.stores").fetchone() == (True,)
    with psycopg.connect(settings.analyst_dsn) as analyst:
        assert analyst.execute("show statement_timeout").fetchone() == ("1min",)
    airflow_dsn = (
        f"postgresql://{names['airflow']}:{environment['RETAIL_AIRFLOW_DB_PASSWORD']}@{names['host']}:"
        f"{names['port']}/{names['airflow']}"
    )
    with psycopg.connect(airflow_dsn) as airflow:
        owner = airflow.execute(
            "select pg_get_userbyid(datdba) from pg_database where datname = current_database()"
        ).fetchone()
        assert owner == (names["airflow"],)
