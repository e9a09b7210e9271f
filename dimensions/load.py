"""Load the dimension files into raw.products and raw.stores: idempotent, one transaction, rejects kept.

Design (README "Dimensions"): every line is a good row or a reject in ``ops.rejected_rows``; the load
id is the file's content hash, so a rerun adds nothing; unchanged rows are not touched; rows the file
no longer lists are kept (facts still refer to them); more than ``RETAIL_DIMENSION_MAX_REJECT_SHARE``
rejected lines load nothing and raise `TooManyRejects`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from retail.db import transaction
from retail.dimension_files import DimensionFileError, ParsedFile, read_products, read_stores, source_name
from retail.settings import Settings

__all__ = [
    "DimensionFileError",
    "LoadResult",
    "TooManyRejects",
    "load_file",
    "load_if_empty",
    "load_products",
    "load_stores",
]

_MAX_REASONS_IN_ERROR = 5


class TooManyRejects(ValueError):
    """More lines were rejected than the configured share allows; nothing was loaded."""


@dataclass(frozen=True)
class LoadResult:
    table: str
    source_file: str
    load_id: str
    rows_read: int
    rows_loaded: int
    rows_changed: int
    rows_rejected: int
    reject_reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (the DAG returns it as XCom and attaches it to the Asset event)."""
        return {
            "table": self.table,
            "source_file": self.source_file,
            "load_id": self.load_id,
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_changed": self.rows_changed,
            "rows_rejected": self.rows_rejected,
        }


def load_file(settings: Settings, parsed: ParsedFile) -> LoadResult:
    """Record the rejects and upsert the good rows in one transaction, unless too many were rejected."""
    source = source_name(parsed.path)
    reasons = [f"line {reject.line_number}: {reject.reason}" for reject in parsed.rejects]
    too_many = parsed.reject_share > settings.dimension_max_reject_share
    changed = 0
    with transaction(settings) as conn:
        _record_rejects(conn, parsed, source)
        if not too_many:
            changed = _upsert(conn, parsed, source)
    if too_many:
        shown = "; ".join(reasons[:_MAX_REASONS_IN_ERROR])
        hidden = len(reasons) - _MAX_REASONS_IN_ERROR
        more = f" (and {hidden} more)" if hidden > 0 else ""
        raise TooManyRejects(
            f"{source}: {len(parsed.rejects)} of {parsed.rows_read} lines rejected "
            f"({parsed.reject_share:.0%} > RETAIL_DIMENSION_MAX_REJECT_SHARE="
            f"{settings.dimension_max_reject_share:g}); nothing loaded into {parsed.dimension.table}. "
            f"{shown}{more}. All reasons: ops.rejected_rows where load_id = '{parsed.load_id}'"
        )
    return LoadResult(
        table=parsed.dimension.table,
        source_file=source,
        load_id=parsed.load_id,
        rows_read=parsed.rows_read,
        rows_loaded=len(parsed.rows),
        rows_changed=changed,
        rows_rejected=len(parsed.rejects),
        reject_reasons=reasons,
    )


def _record_rejects(conn: psycopg.Connection, parsed: ParsedFile, source: str) -> None:
    # (load_id, line_number) is unique (migration 010): a rerun of the same file adds nothing.
    with conn.cursor() as cursor:
        cursor.executemany(
            """insert into ops.rejected_rows (load_id, source_file, line_number, reason, row_text)
               values (%s, %s, %s, %s, %s)
               on conflict (load_id, line_number) do nothing""",
            [(parsed.load_id, source, r.line_number, r.reason, r.row_text) for r in parsed.rejects],
        )


def _upsert(conn: psycopg.Connection, parsed: ParsedFile, source: str) -> int:
    """COPY into a temporary table, then insert-or-update only rows that differ; returns rows changed."""
    dimension = parsed.dimension
    columns = [*dimension.column_names, "source_file"]
    schema, table = dimension.table.split(".")
    target = sql.Identifier(schema, table)
    column_list = sql.SQL(", ").join(map(sql.Identifier, columns))
    conn.execute(
        sql.SQL("create temporary table incoming (like {} including defaults) on commit drop").format(target)
    )
    with conn.cursor().copy(sql.SQL("copy incoming ({}) from stdin").format(column_list)) as copy:
        for row in parsed.rows:
            copy.write_row([*(row[name] for name in dimension.column_names), source])
    updates = sql.SQL(", ").join(
        sql.SQL("{} = excluded.{}").format(sql.Identifier(name), sql.Identifier(name))
        for name in columns
        if name != dimension.key
    )
    current = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(name)) for name in columns)
    incoming = sql.SQL(", ").join(sql.SQL("excluded.{}").format(sql.Identifier(name)) for name in columns)
    statement = sql.SQL(
        """insert into {target} as t ({columns})
           select {columns} from incoming
           on conflict ({key}) do update set {updates}, loaded_at = now()
           where ({current}) is distinct from ({incoming})"""
    ).format(
        target=target,
        columns=column_list,
        key=sql.Identifier(dimension.key),
        updates=updates,
        current=current,
        incoming=incoming,
    )
    return conn.execute(statement).rowcount


def load_products(settings: Settings) -> LoadResult:
    """Load the product catalog named by RETAIL_PRODUCT_CATALOG_CSV into raw.products."""
    return load_file(settings, read_products(settings.product_catalog_csv))


def load_stores(settings: Settings) -> LoadResult:
    """Load the store list named by RETAIL_STORE_LOCATIONS_CSV into raw.stores."""
    return load_file(settings, read_stores(settings.store_locations_csv))


def load_if_empty(settings: Settings) -> list[LoadResult]:
    """First start: load the dimension files when their tables are empty, so the speed layer's
    product/store checks do not dead-letter the first events before the daily DAG has run."""
    results = []
    with psycopg.connect(settings.writer_dsn, connect_timeout=5) as conn:
        empty = {
            table: conn.execute(f"select not exists (select 1 from raw.{table})").fetchone()[0]  # type: ignore[index]
            for table in ("products", "stores")
        }
    if empty["products"]:
        results.append(load_products(settings))
    if empty["stores"]:
        results.append(load_stores(settings))
    return results
