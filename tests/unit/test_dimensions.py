"""Reading and validating dimension CSVs (no database): every line is a good row or a reject with a reason."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from retail.dimension_files import (
    PRODUCTS,
    STORES,
    DimensionFileError,
    read_products,
    read_stores,
    source_name,
)
from retail.settings import PROJECT_ROOT

PRODUCT_HEADER = ",".join(PRODUCTS.column_names)
STORE_HEADER = ",".join(STORES.column_names)


def write(tmp_path: Path, header: str, *lines: str, name: str = "file.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def test_committed_files_are_clean() -> None:
    products = read_products(PROJECT_ROOT / "db" / "data" / "product_catalog.csv")
    stores = read_stores(PROJECT_ROOT / "db" / "data" / "store_locations.csv")
    assert (len(products.rows), products.rejects) == (245, [])
    assert (len(stores.rows), stores.rejects) == (30, [])
    assert products.rows[0] == {
        "product_id": "P0001",
        "sku": "SKU-88506820",
        "name": "Spaghetti 500g",
        "category": "Pasta & Grains",
        "brand": "Bellavita",
        "unit_cost": Decimal("0.98"),
        "base_price": Decimal("1.49"),
    }
    assert stores.rows[0]["opened_on"] == date(2006, 4, 8)
    assert stores.rows[0]["latitude"] == pytest.approx(40.7549)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("P1,S1,Name,Cat,Brand,1.00,-2.00", "base_price -2.00 is negative"),
        ("P1,S1,Name,Cat,Brand,1.00,abc", "base_price 'abc' is not a number"),
        ("P1,S1,Name,Cat,Brand,1.00,NaN", "base_price 'NaN' is not a finite number"),
        ("P1,S1,Name,Cat,Brand,1.001,2.00", "unit_cost 1.001 has more than 2 decimal places"),
        ("P1,S1,Name,Cat,Brand,1.00,99999999999", "base_price 99999999999 is too large"),
        ("P1,S1, ,Cat,Brand,1.00,2.00", "name is empty"),
        ("P1,S1,Name,Cat,Brand,1.00", "expected 7 columns, found 6"),
        ("P1,S1,Name,Cat,Brand,1.00,2.00,extra", "expected 7 columns, found 8"),
        (",S1,,Cat,Brand,x,2.00", "product_id is empty; name is empty; unit_cost 'x' is not a number"),
    ],
)
def test_bad_product_lines_are_rejected_with_reason(tmp_path: Path, line: str, reason: str) -> None:
    parsed = read_products(write(tmp_path, PRODUCT_HEADER, "P0,S0,Good,Cat,Brand,1.00,2.00", line))
    assert len(parsed.rows) == 1
    [reject] = parsed.rejects
    assert (reject.line_number, reject.reason, reject.row_text) == (3, reason, line)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("S1,N,C,R,-91,0,2020-01-01,10,express", "latitude -91 is outside [-90, 90]"),
        ("S1,N,C,R,0,180.5,2020-01-01,10,express", "longitude 180.5 is outside [-180, 180]"),
        ("S1,N,C,R,0,inf,2020-01-01,10,express", "longitude inf is outside [-180, 180]"),
        ("S1,N,C,R,0,0,01/02/2020,10,express", "opened_on '01/02/2020' is not a date (YYYY-MM-DD)"),
        ("S1,N,C,R,0,0,2020-01-01,0,express", "square_meters 0 is not positive"),
        ("S1,N,C,R,0,0,2020-01-01,10.5,express", "square_meters '10.5' is not a whole number"),
    ],
)
def test_bad_store_lines_are_rejected_with_reason(tmp_path: Path, line: str, reason: str) -> None:
    [reject] = read_stores(write(tmp_path, STORE_HEADER, line)).rejects
    assert reject.reason == reason


def test_format_is_optional(tmp_path: Path) -> None:
    parsed = read_stores(write(tmp_path, STORE_HEADER, "S1,N,C,R,0,0,2020-01-01,10,"))
    assert parsed.rejects == [] and parsed.rows[0]["format"] is None


def test_every_line_of_a_duplicated_key_or_sku_is_rejected(tmp_path: Path) -> None:
    parsed = read_products(
        write(
            tmp_path,
            PRODUCT_HEADER,
            "P1,S1,A,Cat,Brand,1.00,2.00",
            "P2,S2,B,Cat,Brand,1.00,2.00",
            "P1,S3,C,Cat,Brand,1.00,2.00",
            "P4,S2,D,Cat,Brand,1.00,2.00",
            "P5,S5,E,Cat,Brand,1.00,2.00",
        )
    )
    assert [row["product_id"] for row in parsed.rows] == ["P5"]
    assert [(r.line_number, r.reason) for r in parsed.rejects] == [
        (2, "duplicate product_id P1 (lines 2, 4)"),
        (3, "duplicate sku S2 (lines 3, 5)"),
        (4, "duplicate product_id P1 (lines 2, 4)"),
        (5, "duplicate sku S2 (lines 3, 5)"),
    ]
    assert parsed.reject_share == pytest.approx(0.8)


def test_line_numbers_count_physical_lines(tmp_path: Path) -> None:
    """Blank lines are skipped and a quoted field spanning lines keeps later line numbers right."""
    path = write(
        tmp_path,
        PRODUCT_HEADER,
        "",
        'P1,S1,"Two\nLines",Cat,Brand,1.00,2.00',
        "P2,S2,Name,Cat,Brand,bad,2.00",
    )
    parsed = read_products(path)
    assert parsed.rows[0]["name"] == "Two\nLines"
    assert [(r.line_number, r.reason) for r in parsed.rejects] == [(5, "unit_cost 'bad' is not a number")]


def test_load_id_follows_the_content(tmp_path: Path) -> None:
    first = read_products(write(tmp_path, PRODUCT_HEADER, "P1,S1,A,C,B,1.00,2.00", name="a.csv"))
    same = read_products(write(tmp_path, PRODUCT_HEADER, "P1,S1,A,C,B,1.00,2.00", name="b.csv"))
    other = read_products(write(tmp_path, PRODUCT_HEADER, "P1,S1,A,C,B,1.00,2.50", name="c.csv"))
    assert first.load_id == same.load_id != other.load_id
    assert first.load_id.startswith("raw.products:")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "product_id,sku,name\nP1,S1,A\n",
            "header is product_id,sku,name; expected " + ",".join(PRODUCTS.column_names),
        ),
        ("", "header is (empty)"),
        (PRODUCT_HEADER + "\n", "has a header but no data rows"),
    ],
)
def test_bad_files_fail_as_a_whole(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "file.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DimensionFileError, match=re.escape(message)):
        read_products(path)


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(DimensionFileError, match=r"cannot read .*missing\.csv"):
        read_products(tmp_path / "missing.csv")
    latin = tmp_path / "latin.csv"
    latin.write_bytes((PRODUCT_HEADER + "\nP1,S1,Caf\xe9,C,B,1.00,2.00\n").encode("latin-1"))
    with pytest.raises(DimensionFileError, match="is not UTF-8"):
        read_products(latin)


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_text(PRODUCT_HEADER + "\nP1,S1,A,C,B,1.00,2.00\n", encoding="utf-8-sig")
    assert len(read_products(path).rows) == 1


def test_source_name_is_relative_inside_the_project(tmp_path: Path) -> None:
    assert source_name(PROJECT_ROOT / "db" / "data" / "store_locations.csv") == "db/data/store_locations.csv"
    assert source_name(tmp_path / "x.csv") == str((tmp_path / "x.csv").resolve())
