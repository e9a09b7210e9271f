"""One writer at a time for the batch tables and the marts: a PostgreSQL advisory lock.

The batch recompute, every dbt build and the demo rewrite the same tables; two of them at once
interleave merges and rebuilds. Every writer holds this lock while it writes: the Airflow tasks
(which also share the one-slot pool `retail_writers`, so they queue in Airflow rather than on the
lock), `retail batch`, `retail dbt` and `retail demo`. A writer waits up to
`RETAIL_BATCH_LOCK_WAIT_MIN`, then fails naming the holder. The lock belongs to a dedicated
session: it is released when the block ends or the process dies, never left behind.

    from retail.writer_lock import writer_lock
    with writer_lock(settings, "retail dbt"):
        run_dbt(settings, ["build"])
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from retail.db import connect
from retail.settings import Settings

# Any constant works as long as every writer uses it; the migration runner uses 7_240_517.
WRITER_LOCK_KEY = 7_240_518
# Airflow pool of every writing task (one slot): created by `retail up` (stack.airflow).
WRITER_POOL = "retail_writers"
_APPLICATION_PREFIX = "retail-writer:"


class WriterLockTimeout(RuntimeError):
    """Another writer held the lock for longer than the wait allowed (the message names it)."""


def current_holder(conn: psycopg.Connection) -> str | None:
    """Who holds the writer lock now (the holder's name, pid and since when), or None."""
    row = conn.execute(
        """select a.application_name, a.pid, a.backend_start
             from pg_locks l join pg_stat_activity a on a.pid = l.pid
            where l.locktype = 'advisory' and l.granted and l.classid = 0 and l.objid = %s
              and l.objsubid = 1""",
        (WRITER_LOCK_KEY,),
    ).fetchone()
    if row is None:
        return None
    name, pid, since = row
    holder = name[len(_APPLICATION_PREFIX) :] if name and name.startswith(_APPLICATION_PREFIX) else name
    return f"{holder or 'unknown'} (pid {pid}, connected {since:%Y-%m-%d %H:%M:%S %Z})"


@contextmanager
def writer_lock(settings: Settings, holder: str, wait_s: float | None = None) -> Iterator[None]:
    """Hold the writer lock for the block; wait at most `wait_s` (default RETAIL_BATCH_LOCK_WAIT_MIN).

    `holder` names the writer (e.g. "retail dbt", "airflow:retail_batch.recompute_closed_hours") so a
    writer that waits in vain can say whom it waited for. Not re-entrant: take it once, at the top.
    """
    wait = settings.batch_lock_wait_min * 60 if wait_s is None else wait_s
    conn = connect(settings, "writer", autocommit=True, application_name=(_APPLICATION_PREFIX + holder)[:63])
    try:
        # lock_timeout bounds the wait of pg_advisory_lock like any other lock wait.
        conn.execute(f"set lock_timeout = {max(1, int(wait * 1000))}")
        try:
            conn.execute("select pg_advisory_lock(%s)", (WRITER_LOCK_KEY,))
        except psycopg.errors.LockNotAvailable:
            other = current_holder(conn) or "a writer that has finished since"
            raise WriterLockTimeout(
                f"{holder} waited {wait:.0f} s for the writer lock held by {other}; let it finish (or "
                "stop it), or raise RETAIL_BATCH_LOCK_WAIT_MIN"
            ) from None
        conn.execute("set lock_timeout = 0")
        yield
    finally:
        conn.close()  # ends the session: the advisory lock goes with it
