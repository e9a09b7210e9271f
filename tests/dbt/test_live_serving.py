"""The live relations (`*_live`) against the raw facts, across the high-water mark and during a build.

A database of its own: baskets and refunds over the last three days are built by dbt, then more land
unbuilt: new baskets, late refunds and a late line for built baskets, a header after its lines. The
dashboard's KPI query over scopes spanning both must equal SQL over raw to the cent; then, while `dbt
build` runs, a poller compares the live relations with raw in one snapshot, and a writer keeps landing
baskets, one of them in a transaction open from before the build until after its horizon is recorded
(the row a timestamp high-water mark would skip).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from dashboard import db as dashboard_db
from dashboard import queries
from dashboard.time_scope import Scope
from retail.dbt import run_dbt
from retail.settings import Settings
from stack import postgres
from tests.dashboard import expected
from tests.dbt.dataset import BASKETS, PRODUCTS, load_dataset
from tests.serving_poller import MartPoller
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
PRODUCT_IDS = [product[0] for product in PRODUCTS]

# Live totals and the same totals from raw, in one statement (one snapshot).
LIVE_VS_RAW = """
select
    (select coalesce(sum(paid_amount), 0) from marts.fct_sales_live),
    (select coalesce(sum(quantity * unit_price - discount), 0) from raw.transaction_items),
    (select count(*) from marts.fct_sales_live),
    (select count(*) from raw.transaction_items),
    (select coalesce(sum(revenue), 0) from marts.agg_kpis_daily_live),
    (select coalesce(sum(refunded_amount), 0) from marts.agg_kpis_daily_live),
    (select coalesce(sum(r.amount), 0) from raw.refunds as r
     where exists (select 1 from raw.transactions as t where t.transaction_id = r.transaction_id)),
    (select coalesce(sum(net_amount), 0) from marts.agg_sales_daily_live),
    (select coalesce(sum(gross_amount), 0) from marts.agg_customer_daily_live),
    (select coalesce(sum(i.quantity * i.unit_price), 0) from raw.transaction_items as i
     join raw.transactions as t using (transaction_id) where t.customer_id is not null)
"""


class Facts:
    """Lands generated baskets and refunds in raw, each basket in one transaction, like the sink."""

    def __init__(self, conn: psycopg.Connection, seed: int) -> None:
        self.conn, self.random, self.number = conn, random.Random(seed), 0

    def basket(self, sold_at: datetime, lines: int | None = None, header: bool = True) -> str:
        self.number += 1
        transaction_id = f"L{self.number:05d}"
        customer = None if self.random.random() < 0.3 else f"C{self.random.randint(1, 20)}"
        store = self.random.choice(["S01", "S02"])
        with self.conn.transaction():
            if header:
                self.header(transaction_id, sold_at, store, customer)
            for number in range(1, (lines or self.random.randint(1, 4)) + 1):
                self.line(transaction_id, number, sold_at, store)
        return transaction_id

    def header(self, transaction_id: str, sold_at: datetime, store: str, customer: str | None) -> None:
        self.conn.execute(
            "insert into raw.transactions (transaction_id, event_id, event_ts, store_id, customer_id,"
            " channel, payment_method, line_count, schema_version)"
            " values (%s, gen_random_uuid(), %s, %s, %s, 'store', 'card', 1, 1)",
            (transaction_id, sold_at, store, customer),
        )

    def line(self, transaction_id: str, number: int, sold_at: datetime, store: str) -> None:
        price = Decimal(self.random.randint(100, 5000)) / 100
        discount = min(price, Decimal(self.random.choice([0, 0, 50, 125])) / 100)
        self.conn.execute(
            "insert into raw.transaction_items (transaction_id, line_number, product_id, quantity,"
            " unit_price, discount, event_ts, store_id) values (%s, %s, %s, %s, %s, %s, %s, %s)",
            (transaction_id, number, self.random.choice(PRODUCT_IDS), self.random.randint(1, 3), price,
             discount, sold_at, store),
        )  # fmt: skip

    def refund(self, transaction_id: str, refunded_at: datetime) -> None:
        product, amount = self.conn.execute(
            "select product_id, quantity * unit_price - discount from raw.transaction_items"
            " where transaction_id = %s order by line_number limit 1",
            (transaction_id,),
        ).fetchone()
        self.number += 1
        self.conn.execute(
            "insert into raw.refunds (refund_id, event_id, transaction_id, product_id, quantity, amount,"
            " reason, event_ts, schema_version)"
            " values (%s, gen_random_uuid(), %s, %s, 1, %s, 'damaged', %s, 1)",
            (f"R{self.number:05d}", transaction_id, product, round(amount / 2, 2), refunded_at),
        )

    def spread(self, baskets: int, span: timedelta) -> list[str]:
        return [self.basket(NOW - span * self.random.random()) for _ in range(baskets)]


@pytest.fixture(scope="module")
def live_settings(platform: Settings) -> Settings:
    settings = platform.model_copy(update={"pg_database": "retail_live_it"})
    postgres.prepare(settings)
    return settings


@pytest.fixture(scope="module")
def conn(live_settings: Settings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(live_settings.writer_dsn, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="module")
def landed(live_settings: Settings, conn: psycopg.Connection) -> Facts:
    """Built: 150 baskets over three days and refunds of some; then unbuilt: new baskets (some in the
    last 15 minutes), late refunds and a late line of built baskets, and a header after its lines."""
    load_dataset(conn)
    facts = Facts(conn, seed=11)
    built = facts.spread(150, timedelta(days=3))
    for transaction_id in built[:15]:
        facts.refund(transaction_id, NOW - timedelta(hours=2))
    result = run_dbt(live_settings, ["build"])
    assert result.success, result.exception

    facts.spread(40, timedelta(days=3))
    for _ in range(20):
        facts.basket(NOW - timedelta(minutes=10) * facts.random.random())
    for transaction_id in built[15:25]:
        facts.refund(transaction_id, NOW - timedelta(minutes=5))
    facts.line(built[30], 9, *conn.execute(
        "select event_ts, store_id from raw.transactions where transaction_id = %s", (built[30],)
    ).fetchone())  # fmt: skip
    headless = facts.basket(NOW - timedelta(minutes=3), header=False)
    facts.header(headless, NOW - timedelta(minutes=3), "S01", "C3")
    return facts


@pytest.fixture
def dashboard_on(live_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dashboard's queries, uncached, against this test's database."""
    monkeypatch.setattr(dashboard_db, "settings", lambda: live_settings)
    monkeypatch.setattr(queries, "settings", lambda: live_settings)
    queries._live.clear()
    dashboard_db._pool.clear()


def live_vs_raw(settings: Settings) -> tuple:
    """As the writer: the analyst may read the live views but not raw."""
    with psycopg.connect(settings.writer_dsn) as reader:
        return reader.execute(LIVE_VS_RAW).fetchone()


def mismatches(row: tuple) -> list[str]:
    paid, raw_paid, lines, raw_lines, revenue, refunded, raw_refunded, net, gross, raw_gross = row
    checks = {
        "fct_sales_live paid": (paid, raw_paid),
        "fct_sales_live lines": (lines, raw_lines),
        "agg_kpis_daily_live revenue": (revenue, raw_paid),
        "agg_kpis_daily_live refunds": (refunded, raw_refunded),
        "agg_sales_daily_live net": (net, raw_paid - raw_refunded),
        "agg_customer_daily_live gross": (gross, raw_gross),
    }
    return [f"{name}: {got} != {want}" for name, (got, want) in checks.items() if got != want]


def test_unbuilt_facts_are_live_and_provisional(live_settings: Settings, landed: Facts) -> None:
    assert mismatches(live_vs_raw(live_settings)) == []
    with psycopg.connect(live_settings.analyst_dsn) as reader:
        provisional = reader.execute(
            "select count(distinct transaction_id) from marts.fct_sales_live where is_provisional"
        ).fetchone()[0]
        built = reader.execute("select count(distinct transaction_id) from marts.fct_sales").fetchone()[0]
    # 40 + 20 new baskets, 10 refunded and 1 with a late line, and the late header's basket.
    assert provisional == 40 + 20 + 10 + 1 + 1
    assert built == 150 + len(BASKETS)  # the dataset's own baskets are built too


@pytest.mark.parametrize(
    "scope",
    [
        Scope.last(timedelta(minutes=15), NOW + timedelta(seconds=1)),
        Scope.last(timedelta(hours=1), NOW + timedelta(seconds=1)),
        Scope.last(timedelta(hours=24), NOW + timedelta(seconds=1)),
        Scope.last(timedelta(days=7), NOW + timedelta(seconds=1)),
        Scope.days((NOW - timedelta(days=2)).date(), NOW.date()),
    ],
    ids=["15m", "1h", "24h", "7d", "3 days"],
)
def test_dashboard_kpis_equal_raw_across_the_high_water_mark(
    live_settings: Settings, landed: Facts, dashboard_on: None, scope: Scope
) -> None:
    with psycopg.connect(live_settings.writer_dsn) as conn:
        want = expected.overview(conn, scope.start, scope.end)
    got = queries.kpis(scope)
    assert want["transactions"] > 0
    for key in ("revenue", "refunds", "net_revenue", "transactions", "active_customers"):
        assert round(got[key], 2) == round(want[key], 2), key


def test_live_relations_stay_exact_during_a_build(live_settings: Settings, landed: Facts) -> None:
    held = psycopg.connect(live_settings.writer_dsn)
    done, errors, polls, wrong, results = threading.Event(), [], [], [], []

    def poll() -> None:
        while not done.is_set():
            try:
                row = live_vs_raw(live_settings)
            except psycopg.Error as error:
                errors.append(str(error).splitlines()[0])
                continue
            polls.append(row)
            wrong.extend(mismatches(row))

    def land() -> None:
        with psycopg.connect(live_settings.writer_dsn, autocommit=True) as conn:
            facts = Facts(conn, seed=5)
            facts.number = 50_000
            for _ in range(2000):
                if done.is_set():
                    break
                facts.basket(NOW - timedelta(seconds=30))

    helpers = [threading.Thread(target=poll), threading.Thread(target=land)]
    build = threading.Thread(target=lambda: results.append(run_dbt(live_settings, ["build"])))
    try:
        with held.transaction():
            # Holds the oldest running transaction id from before the build starts until the build
            # has recorded fct_sales's horizon: its basket commits behind the mark.
            held_facts = Facts(held, seed=99)
            held_facts.number = 90_000
            held_id = held_facts.basket(NOW - timedelta(minutes=1))
            horizon_before = fct_sales_horizon(live_settings)
            for thread in [*helpers, build]:
                thread.start()
            wait_for(lambda: fct_sales_horizon(live_settings) != horizon_before, 300, "fct_sales rebuilt")
        build.join()
    finally:
        done.set()
        held.close()
        for thread in helpers:
            thread.join()
    assert results and results[0].success, results and results[0].exception
    assert errors == []
    assert wrong == []
    assert len(polls) >= 10
    with psycopg.connect(live_settings.analyst_dsn) as reader:
        assert reader.execute(
            "select bool_and(is_provisional) from marts.fct_sales_live where transaction_id = %s", (held_id,)
        ).fetchone()[0]
    assert mismatches(live_vs_raw(live_settings)) == []


def fct_sales_horizon(settings: Settings) -> str | None:
    with psycopg.connect(settings.writer_dsn) as conn:
        row = conn.execute(
            "select built_through_xid::text from ops.serving_horizons where relation_name = 'fct_sales'"
        ).fetchone()
    return row[0] if row else None


@pytest.mark.parametrize("arguments", [["build"], ["build", "--full-refresh"]], ids=["build", "full-refresh"])
def test_every_mart_answers_during_a_rebuild(
    live_settings: Settings, landed: Facts, arguments: list[str]
) -> None:
    """As the analyst, at >= 5 Hz, every relation of marts (tables, live views, the serving view)."""
    with MartPoller(live_settings) as poller:
        started = time.monotonic()
        result = run_dbt(live_settings, arguments)
        elapsed = time.monotonic() - started
    assert {"fct_sales_live", "agg_kpis_daily_live", "fct_product_metrics_minute", "dim_products"} <= set(
        poller.relations
    )
    assert result.success, result.exception
    assert poller.errors == []
    # Paced at 5 Hz; a busy machine may slow a round, so only coverage is asserted, not a rate.
    assert len(poller.rounds) >= 10, f"{len(poller.rounds)} rounds in {elapsed:.1f} s"
    assert set(poller.list_relations()) == set(poller.relations)
