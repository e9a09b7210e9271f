"""Table fingerprints for idempotence tests: equal fingerprints mean identical tables."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg


def table_checksums(conn: psycopg.Connection, tables: Iterable[str]) -> dict[str, tuple[int, str]]:
    """Row count and an md5 over every column of every row (in a fixed order) of each table."""
    result = {}
    for table in tables:
        row = conn.execute(
            f"select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from {table} t"
        ).fetchone()
        assert row is not None
        result[table] = (row[0], row[1])
    return result
