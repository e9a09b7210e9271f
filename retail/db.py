"""PostgreSQL connections by role, and the migration runner for `db/migrations/`.

Migrations are plain SQL files named `NNN_description.sql`, applied in order, each in its own transaction,
and recorded in `ops.schema_migrations` with a checksum: a file that changed after it was applied stops
the run instead of leaving the database in an unknown state. Every statement is idempotent
(`if not exists`), so a half-applied database from an older runner is also safe to migrate.

    retail db migrate
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg
from psycopg import sql

from retail.settings import PROJECT_ROOT, Settings

MIGRATIONS_DIR = PROJECT_ROOT / "db" / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
# Any constant works; it only has to be the same in every runner so two `up`s never migrate at once.
_MIGRATION_LOCK = 7_240_517

Role = Literal["admin", "writer", "analyst"]


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL cannot be reached or refused the login; the message says what to do."""


class MigrationError(RuntimeError):
    """The migrations on disk and those recorded in the database disagree."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def dsn_for(settings: Settings, role: Role) -> str:
    return {"admin": settings.admin_dsn, "writer": settings.writer_dsn, "analyst": settings.analyst_dsn}[role]


def connect(settings: Settings, role: Role = "writer", **kwargs: object) -> psycopg.Connection:
    """A psycopg 3 connection as one of the platform's roles, with a one-line error when it fails."""
    try:
        return psycopg.connect(dsn_for(settings, role), connect_timeout=5, **kwargs)
    except psycopg.OperationalError as error:
        host, port = settings.pg_host_port
        cause = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL at {host}:{port} as {role} ({cause}); "
            "start it with `retail up`, or point RETAIL_PG_URL at a running server"
        ) from None


@contextmanager
def transaction(settings: Settings, role: Role = "writer") -> Iterator[psycopg.Connection]:
    """A connection whose work commits on success and rolls back on error."""
    with connect(settings, role) as conn, conn.transaction():
        yield conn


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNN_lowercase_words.sql")
        migrations.append(Migration(int(match.group(1)), path.stem, path))
    versions = [migration.version for migration in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version number in {directory}")
    return migrations


def ensure_roles(conn: psycopg.Connection, settings: Settings) -> None:
    """Create the writer and analyst login roles, or reset their passwords to the configured ones; the
    analyst's statement_timeout follows RETAIL_ANALYST_STATEMENT_TIMEOUT_S."""
    for user, password in (
        (settings.pg_writer_user, settings.pg_writer_password),
        (settings.pg_analyst_user, settings.pg_analyst_password),
    ):
        if password is None:
            raise MigrationError(
                f"no password for role {user}: run `retail up` once to generate local secrets, "
                "or set RETAIL_PG_WRITER_PASSWORD / RETAIL_PG_ANALYST_PASSWORD"
            )
        exists = conn.execute("select 1 from pg_roles where rolname = %s", (user,)).fetchone()
        verb = sql.SQL("alter role" if exists else "create role")
        conn.execute(
            sql.SQL("{} {} with login password {}").format(
                verb, sql.Identifier(user), sql.Literal(password.get_secret_value())
            )
        )
    # A setting, so not a migration: every migrate (every `retail up`) applies the current value.
    timeout_ms = round(settings.analyst_statement_timeout_s * 1000)
    conn.execute(
        sql.SQL("alter role {} set statement_timeout = {}").format(
            sql.Identifier(settings.pg_analyst_user), sql.Literal(f"{timeout_ms}ms")
        )
    )


def _render(migration: Migration, conn: psycopg.Connection, settings: Settings) -> str:
    roles = {
        ":writer": sql.Identifier(settings.pg_writer_user).as_string(conn),
        ":analyst": sql.Identifier(settings.pg_analyst_user).as_string(conn),
    }
    return re.sub(r":writer\b|:analyst\b", lambda match: roles[match.group(0)], migration.text)


def migrate(settings: Settings, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; returns the names applied now (empty when up to date)."""
    migrations = discover_migrations(directory)
    applied_now: list[str] = []
    with connect(settings, "admin", autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            with conn.transaction():
                ensure_roles(conn, settings)
                conn.execute(
                    sql.SQL("grant connect, temporary on database {} to {}, {}").format(
                        sql.Identifier(settings.pg_database),
                        sql.Identifier(settings.pg_writer_user),
                        sql.Identifier(settings.pg_analyst_user),
                    )
                )
                conn.execute("create schema if not exists ops")
                conn.execute(
                    """create table if not exists ops.schema_migrations (
                           version integer primary key,
                           name text not null,
                           checksum text not null,
                           applied_at timestamptz not null default now())"""
                )
            recorded = dict(conn.execute("select version, checksum from ops.schema_migrations").fetchall())
            for migration in migrations:
                if migration.version in recorded:
                    if recorded[migration.version] != migration.checksum:
                        raise MigrationError(
                            f"{migration.path.name} changed after it was applied; add a new migration "
                            "instead of editing an applied one"
                        )
                    continue
                with conn.transaction():
                    conn.execute(_render(migration, conn, settings))
                    conn.execute(
                        "insert into ops.schema_migrations (version, name, checksum) values (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                applied_now.append(migration.name)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
    return applied_now


def applied_migrations(settings: Settings) -> list[str]:
    with connect(settings, "admin") as conn:
        rows = conn.execute("select name from ops.schema_migrations order by version").fetchall()
    return [name for (name,) in rows]
