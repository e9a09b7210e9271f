"""End to end: a real sales export with returns (producer/data/sample_returns.csv, UCI layout) replayed
through the real broker and the speed layer lands as sales plus refunds; after `dbt build` and an ML
run, each customer's monetary value is net of the returns and equals a hand computation."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest
from pyspark.sql import SparkSession

from dimensions import load as dimensions
from ml.jobs import run_segmentation
from producer.replay import replay
from retail.dbt import run_dbt
from retail.settings import PROJECT_ROOT, Settings
from spark.streaming_job import start_queries
from stack import postgres
from tests.spark.conftest import module_settings, scalar
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

SAMPLE = PROJECT_ROOT / "producer" / "data" / "sample_returns.csv"
DATABASE = "retail_returns_it"
SALES_LINES, BASKETS = 16, 9  # the sample's sale rows of known products, and their invoices
REFUNDED = Decimal("669.21")  # 7.45 + 2.79 + 599.99 + 11.96 + 4.47 + 35.98 + 6.57 (seven returns)
# Paid minus refunded per loyalty customer, from the sample's rows by hand (the guest's basket and the
# four returns without a sale count for nobody).
HAND_MONETARY = {
    "17850": Decimal("61.33"),  # 620.09 + 55.94 − (7.45 + 2.79 + 599.99 + 4.47)
    "13047": Decimal("35.97"),  # 42.35 + 5.58 − 11.96
    "12583": Decimal("40.56"),  # 58.55 + 17.99 − 35.98 (the POST line is an unknown product)
    "14688": Decimal("129.97"),  # its return came before the sale: nothing refunded
    "16029": Decimal("5.98"),  # 12.55 − 6.57
}


@pytest.fixture(scope="module")
def landed(
    platform: Settings, spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """The sample replayed, landed by the speed layer in a database of its own, marts built."""
    tmp = tmp_path_factory.mktemp("returns")
    settings = module_settings(platform, tmp, "returns", pg_database=DATABASE)
    postgres.prepare(settings)
    dimensions.load_products(settings)
    dimensions.load_stores(settings)
    summary = replay(settings, SAMPLE, timestamp_format="%m/%d/%Y %H:%M", rejects_path=tmp / "rejects.csv")
    assert (summary.transactions, summary.refunds, summary.failed) == (BASKETS, 7, 0)
    queries = start_queries(spark, settings)
    try:
        wait_for(
            lambda: (
                scalar(settings, "select count(*) from raw.transaction_items") == SALES_LINES
                and scalar(settings, "select count(*) from raw.refunds") == 7
            ),
            what="the replayed sales and refunds in raw",
        )
    finally:
        for query in queries:
            query.stop()
    result = run_dbt(settings, ["build"])
    assert result.success, result.exception
    yield settings


def test_the_replay_lands_as_sales_plus_refunds(landed: Settings) -> None:
    assert scalar(landed, "select count(*) from ops.dead_letter") == 0
    assert scalar(landed, "select count(*) from raw.transactions") == BASKETS
    assert scalar(landed, "select sum(amount) from raw.refunds") == REFUNDED
    assert scalar(landed, "select array_agg(distinct reason) from marts.fct_refunds") == ["return"]
    # Every refund names its sale's basket and product, so all of it is allocated to that sale's line.
    assert scalar(landed, "select sum(refund_amount) from marts.fct_refunds") == REFUNDED
    assert scalar(landed, "select sum(allocated_amount) from marts.fct_refunds") == REFUNDED
    assert scalar(landed, "select sum(refunded_amount) from marts.fct_sales") == REFUNDED


def test_customer_monetary_is_net_of_returns(landed: Settings) -> None:
    run = run_segmentation(landed)
    assert run.status == "succeeded", run.reason
    with psycopg.connect(landed.writer_dsn) as conn:
        rows = conn.execute(
            "select customer_id, monetary from ml.customer_segments where run_id = %s", (run.run_id,)
        ).fetchall()
    assert {customer: Decimal(str(monetary)) for customer, monetary in rows} == HAND_MONETARY
