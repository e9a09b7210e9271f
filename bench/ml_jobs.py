"""Benchmark: ML segmentation (RFM + K-Means) and association rules end to end, time and peak memory.

On its own embedded PostgreSQL, the producer's simulator (in-process: real archetypes, basket sizes and
planted co-purchases; no refunds) fills only the columns of `marts.fct_sales` and `marts.dim_products`
the jobs read (dbt is bench/dbt_build.py's). Each job then runs in a fresh process, as the DAG runs
`ml.jobs`: read, fit, publish. Peak memory is that process's `ru_maxrss` (PostgreSQL's not counted).

    python -m bench.ml_jobs [--quick]   # full: ~100k customers, ~200k baskets; quick: 10k customers

Last line: one JSON object (segmentation_s, rules_s, peak_rss_mb, customers, baskets, chosen_k, rules,
load_avg). Goals (2 cores): segmentation_s <= 30 at 100k, rules_s <= 60 at 200k baskets, <= 2048 MB.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from producer.backfill import BackfillPlan, simulate_backfill, window
from producer.catalog import load_catalog
from producer.config import SimulationConfig, load_simulation_config
from retail.settings import Settings
from stack import stack
from tests.scratch import scratch_settings

FULL = {"customers": 145_000, "days": 11.0}
QUICK = {"customers": 10_000, "days": 10.0}
END = datetime(2026, 11, 2, tzinfo=UTC)

MARTS_DDL = """
create table marts.fct_sales (
    sales_line_id text primary key,
    transaction_id text not null,
    line_number integer not null,
    product_id text not null,
    customer_id text,
    sold_at timestamptz not null,
    net_amount numeric(18, 2) not null
);
create table marts.dim_products (product_id text primary key, product_name text not null, is_current boolean);
"""


def fill_marts(settings: Settings, customers: int, days: float) -> None:
    """Simulated baskets straight into marts.fct_sales (COPY), products into marts.dim_products."""
    base = load_simulation_config()
    config = SimulationConfig.model_validate({**base.model_dump(), "customers": customers})
    start_ms, end_ms = window(days, END)
    catalog = load_catalog(settings)
    plan = BackfillPlan(config, catalog, config.faults, 11, start_ms, end_ms, 1)
    with psycopg.connect(settings.writer_dsn) as conn, conn.cursor() as cursor:
        cursor.execute("drop table if exists marts.fct_sales, marts.dim_products")
        cursor.execute(MARTS_DDL)
        with cursor.copy("copy marts.dim_products from stdin") as copy:
            for product in catalog.products:
                copy.write_row((product.product_id, product.name, True))
        columns = "sales_line_id, transaction_id, line_number, product_id, customer_id, sold_at, net_amount"
        with cursor.copy(f"copy marts.fct_sales ({columns}) from stdin") as copy:
            for outgoing in simulate_backfill(plan):
                if outgoing.role != "transactions":
                    continue
                event = json.loads(outgoing.payload)
                transaction_id = event["transaction_id"]
                for number, item in enumerate(event["items"], start=1):
                    paid = round(item["quantity"] * item["unit_price"] - item["discount"], 2)
                    copy.write_row(
                        (
                            f"{transaction_id}:{number}",
                            transaction_id,
                            number,
                            item["product_id"],
                            event["customer_id"],
                            event["event_ts"],
                            paid,
                        )
                    )
        cursor.execute("analyze marts.fct_sales")


def _job(settings: Settings, kind: str, results: mp.Queue) -> None:
    """Child process: run one job, report its record and this process's peak RSS."""
    from ml import jobs

    job = {"segmentation": jobs.run_segmentation, "association_rules": jobs.run_association_rules}[kind]
    started = time.perf_counter()
    record = job(settings)
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    results.put({"summary": record.summary(), "seconds": elapsed, "peak_rss_mb": peak_mb})


def timed(settings: Settings, kind: str, load_avg: list[float]) -> dict[str, Any]:
    """Run one job in a fresh process; `load_avg` gets the 1-minute load before it (other work on the
    2 cores inflates the figures)."""
    load_avg.append(round(os.getloadavg()[0], 2))
    context = mp.get_context("spawn")
    results: mp.Queue = context.Queue()
    process = context.Process(target=_job, args=(settings, kind, results))
    process.start()
    result = results.get(timeout=1800)
    process.join()
    if result["summary"]["status"] != "succeeded":
        raise SystemExit(f"{kind} did not succeed: {result['summary']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k customers over 10 days")
    parser.add_argument("--keep", action="store_true", help="leave the state folder (and print it)")
    args = parser.parse_args()
    size = QUICK if args.quick else FULL

    state = Path(tempfile.mkdtemp(prefix="retail-bench-ml-"))
    settings = scratch_settings(state / ".retail")
    try:
        settings = stack.up(settings, report=lambda line: None)
        started = time.perf_counter()
        fill_marts(settings, int(size["customers"]), size["days"])
        print(f"simulated and loaded the marts in {time.perf_counter() - started:.1f} s")
        load_avg: list[float] = []
        segmentation = timed(settings, "segmentation", load_avg)
        rules = timed(settings, "association_rules", load_avg)
    finally:
        stack.down(settings)
        if args.keep:
            print(f"state folder kept: {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)

    customers = segmentation["summary"]["row_counts"]["customers"]
    baskets = rules["summary"]["row_counts"]["baskets"]
    peak = max(segmentation["peak_rss_mb"], rules["peak_rss_mb"])
    print(
        f"segmentation: {segmentation['seconds']:6.1f} s for {customers:,} customers, "
        f"k = {segmentation['summary']['chosen_k']}, peak RSS {segmentation['peak_rss_mb']:.0f} MB "
        "(goal <= 30 s at 100k)"
    )
    print(
        f"rules:        {rules['seconds']:6.1f} s for {baskets:,} baskets, "
        f"{rules['summary']['rule_count']} rules, peak RSS {rules['peak_rss_mb']:.0f} MB "
        "(goal <= 60 s at 200k)"
    )
    print(
        json.dumps(
            {
                "segmentation_s": round(segmentation["seconds"], 2),
                "rules_s": round(rules["seconds"], 2),
                "peak_rss_mb": round(peak, 1),
                "customers": customers,
                "baskets": baskets,
                "chosen_k": segmentation["summary"]["chosen_k"],
                "rules": rules["summary"]["rule_count"],
                "load_avg": load_avg,
            }
        )
    )


if __name__ == "__main__":
    main()
