"""Dimension files (product catalog, store locations): read, validate row by row, load idempotently.

The CSVs in ``db/data/`` (or any file the ``RETAIL_PRODUCT_CATALOG_CSV`` / ``RETAIL_STORE_LOCATIONS_CSV``
settings point at) become ``raw.products`` and ``raw.stores``. The readers are plain Python and free of
Airflow, so the producer and the speed layer can reuse them (``read_products(path).rows``).

Why it is built this way:

- **Nothing silently dropped.** Every data line is either a good row or a reject with its file, line
  number and reason in ``ops.rejected_rows``. A duplicated key rejects *every* line that carries it: the
  file does not say which one is right, and loading either would be a guess.
- **Idempotent.** The load id is derived from the file's content hash, so rerunning a load of the same
  file finds its rejects already recorded (unique on load id + line) and adds none. Good rows are upserted
  with ``... on conflict do update ... where <row> is distinct from <new row>``: unchanged rows are not
  touched, so ``loaded_at`` only moves when a row really changed and a rerun leaves identical tables.
- **One transaction.** COPY into a temporary table, upsert, record rejects, commit: readers never see a
  half-loaded dimension.
- **Rows the file no longer lists are kept.** Facts keep referring to discontinued products and closed
  stores; deleting them would orphan history.
- **A bad file fails loudly.** If more than ``RETAIL_DIMENSION_MAX_REJECT_SHARE`` of the lines are
  rejected, nothing is loaded (the rejects are still recorded, to show why) and ``TooManyRejects`` names
  the file, the share and the first reasons. A file with a wrong header or no data rows fails the same way.

A selling price below the unit cost is *not* rejected: loss leaders are a legitimate retail practice,
and dropping such a product would orphan its sales. Margin checks belong in the marts' tests.

Usage::

    from retail.dimensions import load_products
    result = load_products(get_settings())   # LoadResult(rows_read=245, rows_loaded=245, ...)
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from retail.db import transaction
from retail.settings import PROJECT_ROOT, Settings

# numeric(12, 2) in the tables: at most 10 digits before the point.
_MONEY_LIMIT = Decimal("1e10")
_MAX_REASONS_IN_ERROR = 5


class DimensionFileError(ValueError):
    """The file as a whole cannot be loaded (unreadable, wrong header, no data rows)."""


class TooManyRejects(ValueError):
    """More lines were rejected than the configured share allows; nothing was loaded."""


# Field parsers: each returns the typed value or raises ValueError with the reason shown to operators.


def _text(value: str) -> str:
    return value


def _money(value: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    if amount < 0:
        raise ValueError(f"{value} is negative")
    if amount >= _MONEY_LIMIT:
        raise ValueError(f"{value} is too large")
    if amount != amount.quantize(Decimal("0.01")):
        # numeric(12, 2) would round it silently.
        raise ValueError(f"{value} has more than 2 decimal places")
    return amount


def _coordinate(limit: float) -> Callable[[str], float]:
    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
        if not math.isfinite(number) or not -limit <= number <= limit:
            raise ValueError(f"{value} is outside [-{limit:g}, {limit:g}]")
        return number

    return parse


def _iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number") from None
    if number <= 0:
        raise ValueError(f"{number} is not positive")
    if number > 2**31 - 1:
        raise ValueError(f"{number} is too large")
    return number


@dataclass(frozen=True)
class Column:
    name: str
    parse: Callable[[str], Any]
    required: bool = True


@dataclass(frozen=True)
class Dimension:
    """One dimension file kind: its columns (in file order), key, unique columns and target table."""

    table: str  # schema-qualified
    key: str
    columns: tuple[Column, ...]
    # Other columns unique in the table: a duplicate within the file would fail the whole load.
    unique: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


PRODUCTS = Dimension(
    table="raw.products",
    key="product_id",
    columns=(
        Column("product_id", _text),
        Column("sku", _text),
        Column("name", _text),
        Column("category", _text),
        Column("brand", _text),
        Column("unit_cost", _money),
        Column("base_price", _money),
    ),
    unique=("sku",),
)

STORES = Dimension(
    table="raw.stores",
    key="store_id",
    columns=(
        Column("store_id", _text),
        Column("name", _text),
        Column("city", _text),
        Column("region", _text),
        Column("latitude", _coordinate(90)),
        Column("longitude", _coordinate(180)),
        Column("opened_on", _iso_date),
        Column("square_meters", _positive_int),
        Column("format", _text, required=False),
    ),
)


@dataclass(frozen=True)
class Reject:
    line_number: int
    reason: str
    row_text: str


@dataclass(frozen=True)
class ParsedFile:
    """A dimension file after validation: typed good rows and every rejected line."""

    dimension: Dimension
    path: Path
    load_id: str
    rows: list[dict[str, Any]]
    rejects: list[Reject]

    @property
    def rows_read(self) -> int:
        return len(self.rows) + len(self.rejects)

    @property
    def reject_share(self) -> float:
        return len(self.rejects) / self.rows_read if self.rows_read else 0.0


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


def source_name(path: Path) -> str:
    """How a file is named in the tables: relative to the project when inside it, so clones agree."""
    resolved = path.resolve()
    return str(resolved.relative_to(PROJECT_ROOT)) if resolved.is_relative_to(PROJECT_ROOT) else str(resolved)


def read_dimension(dimension: Dimension, path: Path) -> ParsedFile:
    """Parse and validate every line of a dimension CSV; raises DimensionFileError for a bad file."""
    try:
        content = path.read_bytes()
    except OSError as error:
        raise DimensionFileError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DimensionFileError(f"{path} is not UTF-8 text (byte {error.start})") from None
    load_id = f"{dimension.table}:{hashlib.sha256(content).hexdigest()[:20]}"

    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(reader, [])]
    if header != dimension.column_names:
        raise DimensionFileError(
            f"{path}: header is {','.join(header) or '(empty)'}; expected {','.join(dimension.column_names)}"
        )

    candidates: list[tuple[int, str, dict[str, Any]]] = []
    rejects: list[Reject] = []
    last_line = reader.line_num
    for fields in reader:
        line_number, last_line = last_line + 1, reader.line_num  # a quoted field may span lines
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line: no data, nothing to reject
        raw_text = _row_text(fields)
        row, problems = _validate(dimension, fields)
        if problems:
            rejects.append(Reject(line_number, "; ".join(problems), raw_text))
        else:
            candidates.append((line_number, raw_text, row))

    duplicates = _duplicate_reasons(dimension, candidates)
    rows = []
    for line_number, raw_text, row in candidates:
        if line_number in duplicates:
            rejects.append(Reject(line_number, duplicates[line_number], raw_text))
        else:
            rows.append(row)
    if not rows and not rejects:
        raise DimensionFileError(f"{path} has a header but no data rows")
    rejects.sort(key=lambda reject: reject.line_number)
    return ParsedFile(dimension, path, load_id, rows, rejects)


def _row_text(fields: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    return buffer.getvalue()


def _validate(dimension: Dimension, fields: list[str]) -> tuple[dict[str, Any], list[str]]:
    if len(fields) != len(dimension.columns):
        return {}, [f"expected {len(dimension.columns)} columns, found {len(fields)}"]
    row: dict[str, Any] = {}
    problems = []
    for column, raw in zip(dimension.columns, fields, strict=True):
        value = raw.strip()
        if not value:
            if column.required:
                problems.append(f"{column.name} is empty")
            row[column.name] = None
            continue
        try:
            row[column.name] = column.parse(value)
        except ValueError as error:
            problems.append(f"{column.name} {error}")
    return row, problems


def _duplicate_reasons(
    dimension: Dimension, candidates: list[tuple[int, str, dict[str, Any]]]
) -> dict[int, str]:
    """Line number -> reason, for every line whose key (or other unique column) another line repeats."""
    reasons: dict[int, list[str]] = defaultdict(list)
    for column in (dimension.key, *dimension.unique):
        lines_by_value: dict[Any, list[int]] = defaultdict(list)
        for line_number, _, row in candidates:
            lines_by_value[row[column]].append(line_number)
        for value, lines in lines_by_value.items():
            if len(lines) > 1:
                for line_number in lines:
                    reasons[line_number].append(
                        f"duplicate {column} {value} (lines {', '.join(map(str, lines))})"
                    )
    return {line_number: "; ".join(texts) for line_number, texts in reasons.items()}


def read_products(path: Path) -> ParsedFile:
    return read_dimension(PRODUCTS, path)


def read_stores(path: Path) -> ParsedFile:
    return read_dimension(STORES, path)


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
