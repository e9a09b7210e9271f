"""The dashboard's only way into PostgreSQL: the read-only analyst login, errors turned into banners.

Every query goes through `read_frame`; a failure raises `DashboardError` whose message names the cause
and the command that fixes it (start the database, build the marts, run the ML jobs, migrate), which
pages show with `st.error`. Nothing here returns an empty frame for a failed query: an empty chart must
mean "no rows", never "could not read".

Queries share a connection pool (psycopg_pool, RETAIL_DASHBOARD_POOL_SIZE connections for every viewer
together) and each runs under RETAIL_DASHBOARD_QUERY_TIMEOUT_S: a slow page costs its own viewer a
banner, not every other viewer a wait behind one shared connection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import psycopg
import streamlit as st
from psycopg import errors
from psycopg_pool import ConnectionPool, PoolTimeout

from retail.settings import Settings, get_settings

# What builds each schema the dashboard reads, for "missing table" banners.
_FIX_BY_SCHEMA = {
    "marts": "build the marts with `retail dbt build` (or `retail demo`)",
    "ml": "apply the migrations with `retail db migrate`, then run `retail ml run`",
    "ops": "apply the migrations with `retail db migrate`",
}


class DashboardError(RuntimeError):
    """A query could not run; the message is the banner shown to the user (cause; fix)."""


def settings() -> Settings:
    return get_settings()


@st.cache_resource(show_spinner=False)
def _pool(dsn: str, size: int, timeout_s: float) -> ConnectionPool:
    """One pool per server and sizing, shared by every session of this Streamlit server.

    A first connection is made directly, so a server that is down fails at once with its own error (and
    nothing is cached) instead of after the pool's wait."""
    psycopg.connect(dsn, connect_timeout=3).close()
    timeout_ms = round(timeout_s * 1000)
    return ConnectionPool(
        dsn,
        min_size=1,
        max_size=size,
        kwargs={
            "autocommit": True,
            "connect_timeout": 3,
            "application_name": "retail-dashboard",
        },
        # Server-side cap per statement (below the analyst role's own): a cancelled query frees its
        # connection for the next viewer.
        configure=lambda conn: conn.execute(f"set statement_timeout = {timeout_ms}"),
        # A connection broken by a server restart is replaced instead of handed to the next query.
        check=ConnectionPool.check_connection,
        name="retail-dashboard",
        open=True,
    )


def _describe_missing(error: errors.UndefinedTable | errors.UndefinedFunction, sql: str) -> str:
    text = str(error).splitlines()[0]
    schema = next((name for name in _FIX_BY_SCHEMA if f"{name}." in text or f"{name}." in sql), "marts")
    return f"Missing in the database: {text}; {_FIX_BY_SCHEMA[schema]}."


def unavailable(error: psycopg.OperationalError) -> DashboardError:
    """The banner for a database that cannot be reached: the server, the cause and the fix."""
    host, port = settings().pg_host_port
    cause = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
    return DashboardError(
        f"Database unavailable at {host}:{port} ({cause}); start it with `retail up`, "
        "or check RETAIL_PG_URL / RETAIL_PG_PORT."
    )


def read_frame(sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> pd.DataFrame:
    """Run one read-only query as the analyst role; raises DashboardError naming cause and fix."""
    current = settings()
    timeout_s = current.dashboard_query_timeout_s
    try:
        pool = _pool(current.analyst_dsn, current.dashboard_pool_size, timeout_s)
        with pool.connection(timeout=timeout_s) as conn, conn.cursor() as cursor:
            cursor.execute(sql, params)
            columns = [column.name for column in cursor.description or []]
            return pd.DataFrame(cursor.fetchall(), columns=columns)
    except (errors.UndefinedTable, errors.UndefinedFunction) as error:
        raise DashboardError(_describe_missing(error, sql)) from None
    except errors.QueryCanceled:
        raise DashboardError(
            f"A query of this page ran longer than {timeout_s:g}s and was cancelled; reload the page, "
            "or raise RETAIL_DASHBOARD_QUERY_TIMEOUT_S."
        ) from None
    except PoolTimeout:
        _probe_server(current.analyst_dsn)  # a server gone since the pool opened: that banner instead
        raise DashboardError(
            f"All {current.dashboard_pool_size} dashboard database connections stayed busy for "
            f"{timeout_s:g}s; reload the page, or raise RETAIL_DASHBOARD_POOL_SIZE."
        ) from None
    except errors.InsufficientPrivilege as error:
        raise DashboardError(
            f"The dashboard's login {current.pg_analyst_user} may not read this: "
            f"{str(error).splitlines()[0]}; apply the migrations with `retail db migrate`."
        ) from None
    except psycopg.OperationalError as error:
        raise unavailable(error) from None


def _probe_server(dsn: str) -> None:
    """Raise the server's own connection error (and drop the pool) when it cannot be reached."""
    try:
        psycopg.connect(dsn, connect_timeout=3).close()
    except psycopg.OperationalError as error:
        _pool.clear()
        raise unavailable(error) from None
