"""The dbt project built over the small dataset of conftest.py, checked against SQL over raw.

The tests run in file order over one database: the first build, then its values, a rebuild (identical
marts), the analyst's reads, the incremental run after late data and a product price change, and
source freshness.
"""

from __future__ import annotations

import json
from decimal import Decimal

import psycopg
import pytest

from retail.dbt import dbt_state_dir, run_dbt
from retail.settings import Settings
from tests.dbt.dataset import LATE_BASKET, LATE_REFUND, insert_basket, insert_refund

pytestmark = pytest.mark.integration

MART_TABLES = (
    "dim_products",
    "dim_stores",
    "dim_customers",
    "dim_date",
    "fct_sales",
    "fct_refunds",
    "agg_sales_daily",
    "agg_kpis_daily",
    "rpt_reconciliation",
)
OK_STATUSES = {"success", "pass", "no-op"}  # exposures are no-op nodes

# Independent of the marts: daily net revenue straight from raw (sales by sale date, refunds of landed
# baskets by refund date).
RAW_DAILY_NET_REVENUE = """
with sales as (
    select (event_ts at time zone 'UTC')::date as day, sum(quantity * unit_price - discount) as paid
    from raw.transaction_items group by 1
), refunds as (
    select (r.event_ts at time zone 'UTC')::date as day, sum(r.amount) as refunded
    from raw.refunds r
    where exists (select 1 from raw.transactions t where t.transaction_id = r.transaction_id)
    group by 1
)
select coalesce(sales.day, refunds.day) as day, coalesce(paid, 0) - coalesce(refunded, 0) as net_revenue
from sales full join refunds on sales.day = refunds.day
order by 1
"""


def failures(result: object) -> list[str]:
    return [
        f"{node.node.unique_id}: {node.status} {node.message or ''}"
        for node in result.result.results  # type: ignore[attr-defined]
        if str(node.status) not in OK_STATUSES
    ]


def rows(conn: psycopg.Connection, sql: str, params: tuple = ()) -> list[tuple]:
    return conn.execute(sql, params).fetchall()


def checksums(conn: psycopg.Connection) -> dict[str, str]:
    """md5 of each mart's rows in a fixed order: equal checksums mean identical tables."""
    return {
        table: conn.execute(
            f"select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from marts.{table} t"
        ).fetchone()[0]
        for table in MART_TABLES
    }


def test_build_succeeds_on_every_node(built: object) -> None:
    assert built.exception is None  # type: ignore[attr-defined]
    assert failures(built) == []
    kinds = {node.node.resource_type for node in built.result.results}  # type: ignore[attr-defined]
    assert {"model", "snapshot", "test", "unit_test"} <= {str(kind) for kind in kinds}


def test_daily_net_revenue_matches_raw(built: object, dbt_writer: psycopg.Connection) -> None:
    expected = rows(dbt_writer, RAW_DAILY_NET_REVENUE)
    actual = rows(dbt_writer, "select activity_date, net_revenue from marts.agg_kpis_daily order by 1")
    assert actual == expected
    # 2026-11-02: paid 18 + 5 + 10 + 12 + 9 = 54, refund R2 4.00 -> 50; 2026-11-03: 10 + 3.5 - 12.
    assert actual == [
        (expected[0][0], Decimal("50.00")),
        (expected[1][0], Decimal("1.50")),
    ]


def test_kpis(built: object, dbt_writer: psycopg.Connection) -> None:
    day_one = rows(
        dbt_writer,
        "select transactions, active_customers, revenue, refunded_amount, refund_rate, average_basket_value"
        " from marts.agg_kpis_daily where activity_date = '2026-11-02'",
    )
    # Three baskets (one a guest's: not an active customer), 54.00 paid, 4.00 refunded.
    assert day_one == [(3, 2, Decimal("54.00"), Decimal("4.00"), Decimal("0.0741"), Decimal("18.00"))]


def test_sales_lines_match_raw_and_refunds_are_allocated(
    built: object, dbt_writer: psycopg.Connection
) -> None:
    assert rows(
        dbt_writer, "select count(*), sum(gross_amount), sum(discount_amount) from marts.fct_sales"
    ) == rows(
        dbt_writer, "select count(*), sum(quantity * unit_price), sum(discount) from raw.transaction_items"
    )
    refunded = rows(
        dbt_writer,
        "select sales_line_id, refunded_amount, net_amount from marts.fct_sales where is_refunded order by 1",
    )
    # R1 (12.00 of P1 in T1) fills line 1 (paid 18.00); R2 refunds the guest's whole line.
    assert refunded == [
        ("T1:1", Decimal("12.00"), Decimal("6.00")),
        ("T2:1", Decimal("4.00"), Decimal("8.00")),
    ]
    guest = rows(dbt_writer, "select is_guest, customer_id from marts.fct_sales where transaction_id = 'T2'")
    assert guest == [(True, None)]


def test_customers(built: object, dbt_writer: psycopg.Connection) -> None:
    customers = rows(
        dbt_writer,
        "select customer_id, lifetime_transactions, gross_amount, discount_amount, refunded_amount,"
        " net_amount from marts.dim_customers order by 1",
    )
    assert customers == [
        ("C1", 2, Decimal("49.00"), Decimal("2.50"), Decimal("12.00"), Decimal("34.50")),
        ("C2", 1, Decimal("10.00"), Decimal("1.00"), Decimal("0.00"), Decimal("9.00")),
    ]


def test_serving_view_takes_closed_hours_from_batch(built: object, dbt_writer: psycopg.Connection) -> None:
    served = rows(
        dbt_writer,
        "select to_char(window_start at time zone 'UTC', 'HH24:MI'), product_id, units, is_final,"
        " source_layer from marts.fct_product_metrics_minute order by window_start, product_id",
    )
    assert served == [
        ("10:05", "P1", 3, True, "batch"),
        ("10:05", "P2", 1, True, "batch"),
        ("10:20", "P3", 3, True, "batch"),
        ("11:10", "P2", 2, False, "speed"),
        ("15:00", "P3", 0, False, "speed"),
    ]
    deltas = rows(
        dbt_writer,
        "select product_id, speed_units, batch_units, units_delta, gross_revenue_delta, is_hour_closed,"
        " explained_by_late_events from marts.rpt_reconciliation where not is_matching"
        " order by window_start, product_id",
    )
    # 10:20 P3: the stream missed a late unit in a closed hour (counted in ops.late_events, so
    # explained); 11:10 and the 15:00 refund: the batch layer has not run for those hours yet.
    assert deltas == [
        ("P3", 2, 3, 1, Decimal("4.00"), True, True),
        ("P2", 2, 0, -2, Decimal("-10.00"), False, False),
        ("P3", 0, 0, 0, Decimal("0.00"), False, False),
    ]


def test_rebuild_leaves_identical_marts(
    built: object, dbt_settings: Settings, dbt_writer: psycopg.Connection
) -> None:
    before = checksums(dbt_writer)
    again = run_dbt(dbt_settings, ["build"])
    assert failures(again) == []
    assert checksums(dbt_writer) == before


def test_analyst_reads_marts_but_not_staging(built: object, dbt_settings: Settings) -> None:
    with psycopg.connect(dbt_settings.analyst_dsn, autocommit=True) as analyst:
        for table in (*MART_TABLES, "fct_product_metrics_minute"):
            analyst.execute(f"select count(*) from marts.{table}").fetchone()
        for relation in ("staging.stg_raw__transactions", "snapshots.snap_raw__products"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                analyst.execute(f"select count(*) from {relation}")


def test_incremental_run_picks_up_late_rows_and_price_change(
    built: object, dbt_settings: Settings, dbt_writer: psycopg.Connection
) -> None:
    untouched = rows(
        dbt_writer, "select * from marts.fct_sales where transaction_id in ('T1', 'T4') order by 1"
    )
    insert_basket(dbt_writer, LATE_BASKET)
    insert_refund(dbt_writer, LATE_REFUND)
    dbt_writer.execute(
        "update raw.products set base_price = 11.00, loaded_at = now() where product_id = 'P1'"
    )

    result = run_dbt(dbt_settings, ["build"])
    assert failures(result) == []

    # Only the changed baskets were rebuilt: T5 (new, one line) and T3 (refunded, and within the
    # lookback anyway, one line).
    by_name = {node.node.name: node for node in result.result.results}
    assert by_name["fct_sales"].adapter_response["rows_affected"] == 2
    assert rows(
        dbt_writer,
        "select store_id, customer_id, allocated_amount, unallocated_amount from marts.fct_refunds"
        " where refund_id = 'R3'",
    ) == [("S01", "C2", Decimal("5.00"), Decimal("0.00"))]
    assert (
        rows(dbt_writer, "select * from marts.fct_sales where transaction_id in ('T1', 'T4') order by 1")
        == untouched
    )

    assert rows(dbt_writer, "select count(*) from marts.fct_sales") == rows(
        dbt_writer, "select count(*) from raw.transaction_items"
    )
    assert rows(
        dbt_writer, "select refunded_amount, net_amount from marts.fct_sales where sales_line_id = 'T3:1'"
    ) == [(Decimal("5.00"), Decimal("4.00"))]
    assert rows(dbt_writer, RAW_DAILY_NET_REVENUE) == rows(
        dbt_writer, "select activity_date, net_revenue from marts.agg_kpis_daily order by 1"
    )
    # The snapshot kept P1's old version; sales made before the change keep pointing at it.
    versions = rows(
        dbt_writer,
        "select base_price, is_current, valid_to is null from marts.dim_products where product_id = 'P1'"
        " order by valid_from",
    )
    assert versions == [(Decimal("10.00"), False, False), (Decimal("11.00"), True, True)]
    assert rows(
        dbt_writer,
        "select distinct p.base_price from marts.fct_sales s"
        " join marts.dim_products p using (product_version_id) where s.product_id = 'P1'",
    ) == [(Decimal("10.00"),)]


def test_source_freshness_runs(built: object, dbt_settings: Settings) -> None:
    """After the incremental test: the late basket and refund just landed, so the facts are fresh."""
    result = run_dbt(dbt_settings, ["source", "freshness"])
    assert result.exception is None
    statuses = {node.node.name: str(node.status) for node in result.result.results}
    assert statuses["transaction_items"] == "pass"
    assert set(statuses) >= {"transactions", "refunds", "product_metrics_minute", "closed_hours"}


def test_docs_describe_every_model_and_column(built: object, dbt_settings: Settings) -> None:
    """`dbt docs generate` works, and every model, snapshot and column in the database is described."""
    result = run_dbt(dbt_settings, ["docs", "generate"])
    assert result.success, result.exception
    target = dbt_state_dir(dbt_settings) / "target"
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    missing = []
    for unique_id, node in manifest["nodes"].items():
        if node["resource_type"] not in {"model", "snapshot"}:
            continue
        if not node["description"].strip():
            missing.append(unique_id)
        documented = {name for name, column in node["columns"].items() if column["description"].strip()}
        in_database = set(catalog["nodes"].get(unique_id, {}).get("columns", {}))
        missing.extend(f"{unique_id}.{column}" for column in sorted(in_database - documented))
    assert missing == []


def test_reconciliation_follows_vanished_batch_windows(
    built: object, dbt_settings: Settings, dbt_writer: psycopg.Connection
) -> None:
    """A recompute that no longer finds a window it closed before: a window neither layer holds leaves
    the report (the pre-hook), one the stream holds is compared with nothing. Restored afterwards."""
    report = (
        "select to_char(window_start at time zone 'UTC', 'HH24:MI'), product_id, has_speed_row, has_batch_row"
        " from marts.rpt_reconciliation where product_id in ('P1', 'P3')"
        " and window_start >= '2026-11-02 10:00+00' and window_start < '2026-11-02 11:00+00' order by 1, 2"
    )
    select = ["build", "--select", "rpt_reconciliation"]
    before = rows(dbt_writer, report)
    dbt_writer.execute(
        "insert into batch.product_metrics_minute (window_start, product_id, units, gross_revenue, discount,"
        " transactions, refunds, refund_amount, batch_run_id)"
        " values ('2026-11-02 10:45+00', 'P1', 1, 10.00, 0, 1, 0, 0, 'b2')"
    )
    assert run_dbt(dbt_settings, select).success
    assert ("10:45", "P1", False, True) in rows(dbt_writer, report)

    saved = rows(
        dbt_writer,
        "select window_start, product_id, units, gross_revenue, discount, transactions, refunds,"
        " refund_amount, batch_run_id from batch.product_metrics_minute"
        " where window_start = '2026-11-02 10:20+00' and product_id = 'P3'",
    )
    dbt_writer.execute(
        "delete from batch.product_metrics_minute where window_start in ('2026-11-02 10:45+00',"
        " '2026-11-02 10:20+00') and product_id in ('P1', 'P3')"
    )
    assert run_dbt(dbt_settings, select).success
    vanished = rows(dbt_writer, report)
    assert ("10:45", "P1", False, True) not in vanished
    assert ("10:20", "P3", True, False) in vanished

    dbt_writer.execute(
        "insert into batch.product_metrics_minute (window_start, product_id, units, gross_revenue, discount,"
        " transactions, refunds, refund_amount, batch_run_id) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        saved[0],
    )
    assert run_dbt(dbt_settings, select).success
    assert rows(dbt_writer, report) == before
