"""Realistic marts for the ML tests, without Kafka: the producer's simulator run in-process.

`build_marts(settings)` creates and migrates the settings' database, runs `simulate_backfill` for a
fixed window and seed (so every run of the tests sees the same baskets), COPYs its transactions, lines
and refunds into the raw tables, loads the dimension CSVs and runs `dbt build`. The ML jobs then read
the marts only, as in production. `archetypes()` returns the planted ground truth per customer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from dimensions import load as dimensions
from producer.backfill import BackfillPlan, simulate_backfill, window
from producer.catalog import load_catalog
from producer.config import SimulationConfig, load_simulation_config
from producer.simulator import Simulator
from retail.dbt import run_dbt
from retail.settings import Settings
from stack import postgres

END = datetime(2026, 11, 2, tzinfo=UTC)
DAYS = 28
SEED = 7
CUSTOMERS = 5000


@dataclass(frozen=True)
class SimulatedData:
    plan: BackfillPlan
    transactions: int
    lines: int
    refunds: int


def simulation_plan(settings: Settings, customers: int = CUSTOMERS, days: float = DAYS) -> BackfillPlan:
    base = load_simulation_config()
    config = SimulationConfig.model_validate({**base.model_dump(), "customers": customers})
    start_ms, end_ms = window(days, END)
    return BackfillPlan(
        config=config,
        catalog=load_catalog(settings),
        faults=config.faults,
        seed=SEED,
        start_ms=start_ms,
        end_ms=end_ms,
        workers=1,
    )


def _rows(plan: BackfillPlan) -> tuple[list[tuple], list[tuple], list[tuple]]:
    transactions, lines, refunds = [], [], []
    for outgoing in simulate_backfill(plan):
        event = json.loads(outgoing.payload)
        if outgoing.role == "transactions":
            items = event["items"]
            transactions.append(
                (
                    event["transaction_id"],
                    event["event_id"],
                    event["event_ts"],
                    event["store_id"],
                    event["customer_id"],
                    event["channel"],
                    event["payment_method"],
                    len(items),
                    1,
                )
            )
            for number, item in enumerate(items, start=1):
                lines.append(
                    (
                        event["transaction_id"],
                        number,
                        item["product_id"],
                        item["quantity"],
                        item["unit_price"],
                        item["discount"],
                        event["event_ts"],
                        event["store_id"],
                    )
                )
        else:
            refunds.append(
                (
                    event["refund_id"],
                    event["event_id"],
                    event["transaction_id"],
                    event["product_id"],
                    event["quantity"],
                    event["amount"],
                    event["reason"],
                    event["event_ts"],
                    1,
                )
            )
    return transactions, lines, refunds


def _copy(conn: psycopg.Connection, table: str, columns: str, rows: list[tuple]) -> None:
    with conn.cursor() as cursor, cursor.copy(f"copy {table} ({columns}) from stdin") as copy:
        for row in rows:
            copy.write_row(row)


def load_raw(settings: Settings, plan: BackfillPlan) -> SimulatedData:
    """Replace the raw facts of the settings' database with the plan's simulated events."""
    transactions, lines, refunds = _rows(plan)
    with psycopg.connect(settings.writer_dsn) as conn:
        conn.execute("truncate raw.transactions, raw.transaction_items, raw.refunds")
        _copy(
            conn,
            "raw.transactions",
            "transaction_id, event_id, event_ts, store_id, customer_id, channel, payment_method,"
            " line_count, schema_version",
            transactions,
        )
        _copy(
            conn,
            "raw.transaction_items",
            "transaction_id, line_number, product_id, quantity, unit_price, discount, event_ts, store_id",
            lines,
        )
        _copy(
            conn,
            "raw.refunds",
            "refund_id, event_id, transaction_id, product_id, quantity, amount, reason, event_ts,"
            " schema_version",
            refunds,
        )
    return SimulatedData(plan, len(transactions), len(lines), len(refunds))


def build_marts(settings: Settings, customers: int = CUSTOMERS, days: float = DAYS) -> SimulatedData:
    """Create + migrate the database, load simulated raw facts and dimensions, `dbt build` the marts."""
    postgres.prepare(settings)
    plan = simulation_plan(settings, customers, days)
    data = load_raw(settings, plan)
    dimensions.load_products(settings)
    dimensions.load_stores(settings)
    result = run_dbt(settings, ["build"])
    if not result.success:
        raise RuntimeError(f"dbt build failed: {result.exception or 'see the dbt log'}")
    return data


_BUILT: dict[tuple[str, int, str], tuple[Settings, SimulatedData]] = {}


def marts_database(platform: Settings, database: str) -> tuple[Settings, SimulatedData]:
    """The marts built once per test session and database name (tests/ml and tests/dags share it)."""
    key = (str(platform.state_dir), platform.pg_port, database)
    if key not in _BUILT:
        settings = platform.model_copy(update={"pg_database": database})
        _BUILT[key] = (settings, build_marts(settings))
    return _BUILT[key]


def archetypes(plan: BackfillPlan) -> dict[str, str]:
    """customer_id -> archetype name, drawn exactly as the simulator drew them."""
    simulator = Simulator(plan.config, plan.catalog)
    result = {}
    for index in range(plan.config.customers):
        customer = simulator.customer(plan.run_key, index, plan.start_ms, plan.end_ms)
        result[customer.customer_id] = simulator.archetype_names[customer.archetype]
    return result
