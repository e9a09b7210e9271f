"""What a dimension file holds: one column spec per file and the row rules every reader applies.

The generator writes these columns, the loader (`dimensions.load`) validates and upserts them, the
producer's catalog sells only rows that pass, and the tests read the same spec. A line either parses
into a typed row or becomes a `Reject` with its line number and reason.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from retail.settings import PROJECT_ROOT

# numeric(12, 2) in the tables: at most 10 digits before the point.
_MONEY_LIMIT = Decimal("1e10")


class DimensionFileError(ValueError):
    """The file as a whole cannot be loaded (unreadable, wrong header, no data rows)."""


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
