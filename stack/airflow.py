"""Airflow 3 in the local stack: api-server, scheduler, dag-processor and triggerer under supervisord.

The metadata database is its own database and login role in the platform's PostgreSQL, so Airflow's
tables never mix with the pipeline's. Secrets never enter the supervisord configuration: they go into
0600 files in ``AIRFLOW_HOME`` on every ``retail up``; every other setting travels as ``AIRFLOW__*`` and
``RETAIL_*`` variables, so DAG tasks see the same platform as the CLI. ``prepare`` migrates the metadata
only when Airflow or the database changed (a stamp file records both).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from retail.dbt import dbt_state_dir
from retail.settings import GENERATED_PASSWORD_FIELDS, POSTGRES_CONN_ID, PROJECT_ROOT, Settings, env_name
from stack.errors import StackError
from stack.service import Service, http_json

DAGS_FOLDER = PROJECT_ROOT / "dags"
PASSWORDS_FILE_NAME = "simple_auth_manager_passwords.json"
CONNECTIONS_FILE_NAME = "connections.json"
# Connection ids of the platform's own connections (see `connections`).
SPARK_CONN_ID = "retail_spark"
_MIGRATION_STAMP = "metadata-migrated.txt"
# Settings never copied into the supervisord environment: secrets (they come from secrets.env) and a
# URL that may embed one (RETAIL_PG_URL is read from the environment or .env, where it is normally set;
# only its absence is passed on, as an empty value).
_NOT_PASSED_THROUGH = {*GENERATED_PASSWORD_FIELDS, "pg_url"}


def metadata_url(settings: Settings, driver: str = "psycopg2") -> str:
    """SQLAlchemy URL of Airflow's metadata database (psycopg2: the driver Airflow is tested with)."""
    if settings.airflow_db_password is None:
        raise StackError("no Airflow database password generated yet; run `retail up`")
    host, port = settings.pg_host_port
    password = quote(settings.airflow_db_password.get_secret_value(), safe="")
    user = quote(settings.airflow_db_user, safe="")
    return f"postgresql+{driver}://{user}:{password}@{host}:{port}/{settings.airflow_db_name}"


def retail_environment(settings: Settings) -> dict[str, str]:
    """Every non-secret setting as its RETAIL_* variable, so DAG tasks see exactly this stack.

    All of them, not only those that differ from the defaults: supervisord hands its own environment
    (that of the shell that first ran `retail up`) down to the tasks, and a stale RETAIL_* variable in
    it must not win over the settings `retail up` runs with. An empty value means "not set".
    """
    environment = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if name in _NOT_PASSED_THROUGH and value is not None:
            continue
        text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        environment[env_name(name)] = text
    return environment


def airflow_environment(settings: Settings) -> dict[str, str]:
    """The non-secret Airflow configuration, as AIRFLOW__SECTION__KEY variables."""
    parallelism = str(settings.airflow_parallelism)
    return {
        "AIRFLOW_HOME": str(settings.airflow_home),
        # Tasks run this venv's tools by name (spark-submit for SparkSubmitOperator, dbt for Cosmos).
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": parallelism,
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": parallelism,
        # The platform's DAGs are meant to run on their schedules as soon as the stack is up.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        # LocalExecutor workers report task state to the api-server's execution API.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{settings.airflow_url}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{settings.airflow_admin_user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(settings.airflow_home / PASSWORDS_FILE_NAME),
        "AIRFLOW__API__HOST": settings.host,
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__BASE_URL": settings.airflow_url,
        # One uvicorn worker: the UI has a handful of users; each worker costs ~300 MB and a core at start.
        "AIRFLOW__API__WORKERS": "1",
        # Two cores: one parsing process; a new DAG file is picked up within 30 s instead of 5 min.
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        # Four processes hold pools; PostgreSQL allows 200 connections, shared with the pipeline.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "5",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(settings.airflow_home / "logs"),
        # No internet on the platform's machines: Cosmos must not try to send usage metrics.
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        # Cosmos's partial-parse and profile cache per stack (its default, /tmp/cosmos, is shared by every
        # stack on the machine: another stack's profile invalidated the partial parse, so each dbt task
        # parsed the whole project again; and the cached profiles.yml holds the password).
        "AIRFLOW__COSMOS__CACHE_DIR": str(settings.state_dir / "cosmos"),
    }


def environment(settings: Settings) -> dict[str, str]:
    """Environment of every Airflow process (and of `airflow db migrate`)."""
    return {**airflow_environment(settings), **retail_environment(settings)}


def _secret_config(settings: Settings) -> str:
    if settings.airflow_secret_key is None:
        raise StackError("no Airflow secret key generated yet; run `retail up`")
    key = settings.airflow_secret_key.get_secret_value()
    # Fernet needs 32 url-safe base64 bytes; derive it so there is one generated secret to keep.
    fernet_key = base64.urlsafe_b64encode(hashlib.sha256(f"fernet:{key}".encode()).digest()).decode()
    # Task tokens are signed with HS512, which wants a 64-byte key (PyJWT warns about shorter ones).
    jwt_secret = hashlib.sha512(f"jwt:{key}".encode()).hexdigest()
    lines = [
        "# Written by `retail up` from secrets.env on every start; edits are overwritten.",
        "# Non-secret settings are AIRFLOW__* variables in <state_dir>/run/supervisord.conf.",
        "[database]",
        f"sql_alchemy_conn = {metadata_url(settings)}",
        # Airflow would derive postgresql+asyncpg; psycopg 3 (installed anyway) serves async as well.
        f"sql_alchemy_conn_async = {metadata_url(settings, driver='psycopg_async')}",
        "[core]",
        f"fernet_key = {fernet_key}",
        "[api]",
        f"secret_key = {key}",
        "[api_auth]",
        f"jwt_secret = {jwt_secret}",
        # The platform's connections (retail_postgres, retail_spark) come from a 0600 file: `connections`.
        # (Here rather than in supervisord's environment, whose quoting cannot carry JSON.)
        "[secrets]",
        "backend = airflow.secrets.local_filesystem.LocalFilesystemBackend",
        "backend_kwargs = "
        + json.dumps({"connections_file_path": str(settings.airflow_home / CONNECTIONS_FILE_NAME)}),
        # The dbt docs site in the Airflow UI (Browse > dbt Docs, Cosmos's plugin; on Airflow 3 it reads
        # only this key), from the folder retail_batch's `generate_docs` refreshes after each build.
        "[cosmos]",
        "dbt_docs_projects = " + json.dumps({"retail": docs_project(settings)}),
    ]
    # configparser interpolates %(...)s: a literal percent sign (URL-quoted password) must be doubled.
    return "\n".join(line.replace("%", "%%") for line in lines) + "\n"


def docs_project(settings: Settings) -> dict[str, str]:
    """The dbt docs project Cosmos's Airflow 3 plugin serves: the target folder `dbt docs generate`
    writes (retail_batch's `generate_docs`, `retail docs`)."""
    return {"dir": str(dbt_state_dir(settings) / "target"), "index": "index.html", "name": "dbt Docs"}


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through os.open


def write_config(settings: Settings) -> None:
    """airflow.cfg (secrets only) and the Simple auth manager's passwords file, both mode 0600."""
    if settings.airflow_admin_password is None:
        raise StackError("no Airflow admin password generated yet; run `retail up`")
    home = settings.airflow_home
    _write_private(home / "airflow.cfg", _secret_config(settings))
    passwords = {settings.airflow_admin_user: settings.airflow_admin_password.get_secret_value()}
    _write_private(home / PASSWORDS_FILE_NAME, json.dumps(passwords))
    _write_private(home / CONNECTIONS_FILE_NAME, json.dumps(connections(settings), indent=2))


def connections(settings: Settings) -> dict[str, dict[str, object]]:
    """The Airflow connections the platform's DAGs use, served from a 0600 file (LocalFilesystemBackend).

    - ``retail_postgres``: the writer role on the pipeline database; Cosmos maps it to dbt's profile.
    - ``retail_spark``: where SparkSubmitOperator submits (RETAIL_SPARK_MASTER, or the local cluster's
      master with RETAIL_SPARK_CLUSTER; local by default).

    A file rather than AIRFLOW_CONN_* variables keeps the password out of supervisord's configuration.
    The secrets backend is consulted before the metadata DB, so to submit elsewhere define a connection
    of another name in the UI and set RETAIL_BATCH_SPARK_CONN_ID to it.
    """
    host, port = settings.pg_host_port
    password = settings.pg_writer_password.get_secret_value() if settings.pg_writer_password else ""
    return {
        POSTGRES_CONN_ID: {
            "conn_type": "postgres",
            "host": host,
            "port": port,
            "login": settings.pg_writer_user,
            "password": password,
            "schema": settings.pg_database,
        },
        SPARK_CONN_ID: {
            "conn_type": "spark",
            "host": settings.spark_master_url,
            "extra": json.dumps({"spark-binary": "spark-submit"}),
        },
    }


def ensure_database(settings: Settings) -> None:
    """Airflow's login role (password reset to the generated one) and its own database."""
    if settings.airflow_db_password is None:
        raise StackError("no Airflow database password generated yet; run `retail up`")
    role = sql.Identifier(settings.airflow_db_user)
    with psycopg.connect(settings.maintenance_dsn, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute(
            "select 1 from pg_roles where rolname = %s", (settings.airflow_db_user,)
        ).fetchone()
        conn.execute(
            sql.SQL("{} {} with login password {}").format(
                sql.SQL("alter role" if exists else "create role"),
                role,
                sql.Literal(settings.airflow_db_password.get_secret_value()),
            )
        )
        if not conn.execute(
            "select 1 from pg_database where datname = %s", (settings.airflow_db_name,)
        ).fetchone():
            conn.execute(
                sql.SQL("create database {} owner {}").format(sql.Identifier(settings.airflow_db_name), role)
            )


def _metadata_connection(settings: Settings) -> psycopg.Connection:
    """A connection to Airflow's metadata database as its own role."""
    host, port = settings.pg_host_port
    assert settings.airflow_db_password is not None
    return psycopg.connect(
        host=host,
        port=port,
        dbname=settings.airflow_db_name,
        user=settings.airflow_db_user,
        password=settings.airflow_db_password.get_secret_value(),
        connect_timeout=5,
    )


def _alembic_revision(settings: Settings) -> str | None:
    with _metadata_connection(settings) as conn:
        if conn.execute("select to_regclass('public.alembic_version')").fetchone() == (None,):
            return None
        row = conn.execute("select version_num from alembic_version").fetchone()
    return row[0] if row else None


def migration_needed(settings: Settings) -> bool:
    """True unless this Airflow version already migrated this very database (per the stamp file)."""
    stamp = settings.airflow_home / _MIGRATION_STAMP
    if not stamp.is_file():
        return True
    expected = f"{importlib.metadata.version('apache-airflow')} {_alembic_revision(settings)}"
    return stamp.read_text(encoding="utf-8").strip() != expected


def migrate_metadata(settings: Settings) -> None:
    """`airflow db migrate` (idempotent in itself; skipped when the stamp says it is not needed)."""
    if not migration_needed(settings):
        return
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env={**os.environ, **environment(settings)},
        capture_output=True,
        text=True,
    )
    log = settings.log_dir / "airflow-db-migrate.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(result.stdout + result.stderr, encoding="utf-8")
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        raise StackError(f"airflow db migrate failed: {lines[-1] if lines else 'no output'}; see {log}")
    stamp = f"{importlib.metadata.version('apache-airflow')} {_alembic_revision(settings)}\n"
    (settings.airflow_home / _MIGRATION_STAMP).write_text(stamp, encoding="utf-8")


def ensure_writer_pool(settings: Settings) -> None:
    """The one-slot pool of every task writing batch tables or marts (`retail.writer_lock.WRITER_POOL`):
    writers queue in Airflow, visibly, instead of holding task slots while they wait for the lock."""
    from retail.writer_lock import WRITER_POOL

    with _metadata_connection(settings) as conn:
        if conn.execute("select 1 from slot_pool where pool = %s", (WRITER_POOL,)).fetchone():
            return
    description = "One writer at a time: tasks writing batch.* or marts.* (retail.writer_lock)"
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "pools", "set", WRITER_POOL, "1", description],
        env={**os.environ, **environment(settings)},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        raise StackError(f"creating the Airflow pool {WRITER_POOL} failed: {lines[-1] if lines else '?'}")


def prepare(settings: Settings) -> None:
    """Everything Airflow needs before its first process starts; cheap when nothing changed."""
    try:
        ensure_database(settings)
        write_config(settings)
        migrate_metadata(settings)
        ensure_writer_pool(settings)
    except psycopg.Error as error:
        cause = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise StackError(
            f"preparing Airflow's metadata database {settings.airflow_db_name} failed ({cause}); "
            "the PostgreSQL admin login needs CREATEROLE and CREATEDB, or set RETAIL_AIRFLOW_ENABLED=false"
        ) from None


def health(settings: Settings) -> dict:
    """The api-server's /api/v2/monitor/health answer (metadatabase, scheduler, dag processor, triggerer)."""
    return http_json(f"{settings.airflow_url}/api/v2/monitor/health")


def _component_healthy(settings: Settings, component: str) -> None:
    status = (health(settings).get(component) or {}).get("status")
    if status != "healthy":
        raise RuntimeError(f"{component} reports {status or 'no heartbeat yet'}")


def services(settings: Settings) -> list[Service]:
    """The four Airflow processes, api-server first: the others report their health through it."""
    airflow = [sys.executable, "-m", "airflow"]
    # Five seconds from SIGTERM to SIGKILL: none of the four keeps state a kill could lose (the metadata
    # is in PostgreSQL), and under load each spends longer tearing down its interpreter than working.
    common = {"environment": environment(settings), "directory": str(PROJECT_ROOT), "stop_wait_s": 5}
    return [
        Service(
            name="airflow-api-server",
            command=[*airflow, "api-server", "--host", settings.host, "--port", str(settings.airflow_port)],
            health_check=lambda: _component_healthy(settings, "metadatabase"),
            port=settings.airflow_port,
            port_setting="RETAIL_AIRFLOW_PORT",
            url=settings.airflow_url,
            # Running tasks report their final state to it: it stops after the other three.
            needed_by_later=True,
            **common,
        ),
        Service(
            name="airflow-scheduler",
            command=[*airflow, "scheduler"],
            health_check=lambda: _component_healthy(settings, "scheduler"),
            # SIGTERM reaches the whole process group: running tasks stop at once and are marked for
            # retry. The scheduler itself then waits on its idle LocalExecutor workers and never exits
            # (killed after 48 s when measured), so its 60 s stop wait was the slow `retail down`.
            **common,
        ),
        Service(
            name="airflow-dag-processor",
            command=[*airflow, "dag-processor"],
            health_check=lambda: _component_healthy(settings, "dag_processor"),
            **common,
        ),
        Service(
            name="airflow-triggerer",
            command=[*airflow, "triggerer"],
            health_check=lambda: _component_healthy(settings, "triggerer"),
            **common,
        ),
    ]


def login_lines(settings: Settings) -> list[str]:
    """What `retail up` prints about Airflow: the UI address and its login."""
    password = settings.airflow_admin_password.get_secret_value() if settings.airflow_admin_password else "?"
    return [
        f"  Airflow     {settings.airflow_url}  (UI and REST API)",
        f"              login: {settings.airflow_admin_user} / {password}",
    ]
