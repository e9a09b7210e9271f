"""Benchmark of live serving: how soon a sale counts on the dashboard, and what the live slice costs.

(a) Freshness: the stream runs in this process while a producer sends 1,000 baskets/s stamped with their
    send time; the Overview's KPI query (`dashboard.queries.kpis`, uncached) polls at 5 Hz, with the
    `retail_serving` refresh (`retail.dbt.SERVING_MODELS`, own process) every RETAIL_SERVING_REFRESH_MIN.
    A basket counts once the query's count reaches its send rank; baseline: the same rank in raw.
(b) Render: the Overview (AppTest, cold cache) over 1M built line items (bench/dashboard_pages.py's data)
    plus the unbuilt slice one refresh interval leaves at 100 baskets/s, then a whole hour's.

    python -m bench.freshness [--quick] [--seconds S] [--lines N] [--phases freshness,render]

Last line: one JSON object (freshness_p50_s, freshness_p95_s, raw_p50_s, raw_p95_s, overview_render_s,
overview_render_hour_slice_s, line_items, ...). Goals (2 cores): freshness p95 <= 10 s; render <= 1.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from kafka import KafkaProducer

from bench import dashboard_pages as dashboard_bench  # sibling scripts
from bench import dbt_build as dbt_bench
from bench import speed_layer as speed_bench
from retail.dbt import SERVING_MODELS, run_dbt
from retail.settings import Settings, get_settings
from stack import stack
from stack.airflow import retail_environment
from tests.scratch import scratch_settings

RATE = 1000  # baskets/s sent in (a)
SLICE_RATE = 100  # baskets/s of the unbuilt slice in (b)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[int(share * (len(ordered) - 1))]


def latencies_by_rank(sent: list[float], counts: list[tuple[float, int]], base: int) -> list[float]:
    """For the i-th basket sent, the first observation whose count reached base + i, minus its send time."""
    result, position = [], 0
    for rank, sent_at in enumerate(sent, start=1):
        while position < len(counts) and counts[position][1] - base < rank:
            position += 1
        if position == len(counts):
            break
        result.append(counts[position][0] - sent_at)
    return result


def measure_freshness(settings: Settings, seconds: float) -> dict[str, float | int]:
    """(a), with the streaming job and the serving refresh running."""
    from dashboard import queries
    from dashboard.time_scope import Scope
    from spark.session import spark_session
    from spark.streaming_job import start_queries

    products, stores = speed_bench.load_dimensions(settings)
    result = run_dbt(settings, ["build", "--quiet"])
    if not result.success:
        raise SystemExit(f"dbt build failed: {result.exception or 'see the dbt output above'}")
    spark = spark_session(settings, "retail-freshness-bench", ui=False)
    spark.sparkContext.setLogLevel("ERROR")
    stream = start_queries(spark, settings)
    dashboard_bench.point_dashboard(settings)
    done = threading.Event()
    kpi_counts: list[tuple[float, int]] = []
    raw_counts: list[tuple[float, int]] = []
    refreshes: list[float] = []

    def kpi_count() -> int:
        queries._live.clear()
        return int(queries.kpis(Scope.last(timedelta(minutes=15), datetime.now(UTC)))["transactions"])

    def poll() -> None:
        # Five times a second, as several dashboard sessions would: back to back, the poller would take
        # a core and the GIL from the stream's driver, which runs in this process.
        with psycopg.connect(settings.writer_dsn, autocommit=True) as conn:
            while not done.wait(0.2):
                kpi_counts.append((time.time(), kpi_count()))
                raw_counts.append(
                    (time.time(), conn.execute("select count(*) from raw.transactions").fetchone()[0])
                )

    def refresh() -> None:
        # In its own process, as Airflow runs retail_serving.
        command = [sys.executable, "-m", "retail.dbt", "run", "--quiet", "--select", *SERVING_MODELS]
        environment = {**os.environ, **retail_environment(settings)}
        while not done.wait(settings.serving_refresh_min * 60):
            started = time.perf_counter()
            subprocess.run(command, env=environment, check=True, capture_output=True)
            refreshes.append(time.perf_counter() - started)

    base_kpi, base_raw = kpi_count(), 0
    with psycopg.connect(settings.writer_dsn) as conn:
        base_raw = conn.execute("select count(*) from raw.transactions").fetchone()[0]
    helpers = [threading.Thread(target=poll, daemon=True), threading.Thread(target=refresh, daemon=True)]
    for helper in helpers:
        helper.start()
    sent = send_steadily(settings, seconds, products, stores)
    deadline = time.time() + 60
    while time.time() < deadline and (not kpi_counts or kpi_counts[-1][1] - base_kpi < len(sent)):
        time.sleep(0.2)
    done.set()
    for helper in helpers:
        helper.join(timeout=600)
    for query in stream:
        query.stop()
    spark.stop()
    fresh = latencies_by_rank(sent, kpi_counts, base_kpi)
    landed = latencies_by_rank(sent, raw_counts, base_raw)
    polls = len(kpi_counts)
    print(
        f"(a) {len(sent):,} baskets at {RATE:,}/s over {seconds:.0f} s: counted by the KPI query p50 "
        f"{statistics.median(fresh):.2f} s, p95 {percentile(fresh, 0.95):.2f} s ({len(fresh):,} counted "
        f"within 60 s of the last send); visible in raw p50 {statistics.median(landed):.2f} s, p95 "
        f"{percentile(landed, 0.95):.2f} s; {polls} KPI queries ({seconds / max(polls, 1):.2f} s each); "
        f"serving refreshes {', '.join(f'{t:.1f} s' for t in refreshes) or 'none'}",
        file=sys.stderr,
    )
    return {
        "freshness_p50_s": round(statistics.median(fresh), 3),
        "freshness_p95_s": round(percentile(fresh, 0.95), 3),
        "raw_p50_s": round(statistics.median(landed), 3),
        "raw_p95_s": round(percentile(landed, 0.95), 3),
        "baskets": len(sent),
        "baskets_counted": len(fresh),
    }


def send_steadily(settings: Settings, seconds: float, products: list[str], stores: list[str]) -> list[float]:
    """RATE baskets/s for `seconds`, each stamped with its send time; returns the send times in order."""
    import random

    rng, sent = random.Random(3), []
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5)
    tick, next_tick, stop_at = 0.01, time.time(), time.time() + seconds
    while time.time() < stop_at:
        for _ in range(int(RATE * tick)):
            now = datetime.now(UTC)
            event = speed_bench.basket(rng, products, stores, now)
            sent.append(now.timestamp())
            producer.send(settings.transactions_topic, key=event.key, value=event.model_dump_json().encode())
        next_tick += tick
        time.sleep(max(0.0, next_tick - time.time()))
    producer.flush()
    producer.close()
    return sent


def add_unbuilt_slice(settings: Settings, baskets: int, span: timedelta) -> int:
    """`baskets` landing after the last build, sold over the last `span`, like dbt_build's +1 %."""
    with psycopg.connect(settings.writer_dsn, autocommit=True) as conn, conn.cursor() as cursor:
        (last_id,) = cursor.execute("select max(transaction_id) from raw.transactions").fetchone()
        start = f"(now() - interval '{int(span.total_seconds())} seconds')"
        cursor.execute(
            dbt_bench.GENERATE_BASKETS.format(
                first=int(last_id[1:]) + 1, baskets=baskets, start=start, end="now()", late_share=0
            ).replace(
                "+ interval '8 hours' + random() * interval '14 hours'",
                f"+ random() * interval '{int(span.total_seconds())} seconds'",
            )
        )
        cursor.execute(f"update raw.transactions set ingested_at = now() where transaction_id > '{last_id}'")
        cursor.execute(dbt_bench.GENERATE_LINES.format(after=f"'{last_id}'"))
        cursor.execute("analyze raw.transactions, raw.transaction_items")
        return cursor.execute("select count(*) from marts.fct_sales_live where is_provisional").fetchone()[0]


def measure_render(settings: Settings, lines: int, quick: bool, repeat: int) -> dict[str, float | int]:
    """(b): the Overview over built line items plus the slice of one refresh interval, then of an hour."""
    line_items = dashboard_bench.prepare_data(settings, lines, quick)
    dashboard_bench.point_dashboard(settings)
    figures: dict[str, float | int] = {"line_items": line_items}
    interval = timedelta(minutes=settings.serving_refresh_min)
    scale = lines / dashboard_bench.FULL_LINES  # the quick run scales the slices down with the data
    total = 0
    for label, span in (
        ("overview_render_s", interval),
        ("overview_render_hour_slice_s", timedelta(hours=1)),
    ):
        wanted = round(SLICE_RATE * span.total_seconds() * scale)
        slice_lines = add_unbuilt_slice(settings, wanted - total, span)
        total = wanted
        dashboard_bench.render("overview", cold=True)
        timings = [dashboard_bench.render("overview", cold=True) for _ in range(repeat)]
        figures[label] = round(statistics.median(timings), 3)
        slice_key = "slice_baskets" if label == "overview_render_s" else "hour_slice_baskets"
        figures[slice_key] = total
        print(
            f"(b) Overview over {line_items:,} built line items + {total:,} unbuilt baskets "
            f"({slice_lines:,} provisional lines): cold render {figures[label]:.2f} s "
            f"(runs {', '.join(f'{t:.2f}' for t in timings)})",
            file=sys.stderr,
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small run (under two minutes)")
    parser.add_argument("--seconds", type=float, help="duration of the 1,000 baskets/s phase")
    parser.add_argument("--lines", type=int, help="built line items for the render phase")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--phases", default="freshness,render", help="comma-separated: freshness, render")
    args = parser.parse_args()
    seconds = args.seconds or (15.0 if args.quick else 120.0)
    lines = args.lines or (dashboard_bench.QUICK_LINES if args.quick else dashboard_bench.FULL_LINES)

    figures: dict[str, object] = {}
    for phase in args.phases.split(","):
        state = Path(tempfile.mkdtemp(prefix=f"bench-{phase}-"))
        state.chmod(0o755)
        settings = scratch_settings(state / ".retail")
        try:
            settings = stack.up(settings, report=lambda line: print(f"  {line}", file=sys.stderr))
            if phase == "freshness":
                figures.update(measure_freshness(settings, seconds))
            else:
                figures.update(measure_render(settings, lines, args.quick, args.repeat))
        finally:
            stack.down(settings)
            shutil.rmtree(state, ignore_errors=True)
    figures.update(
        {
            "refresh_min": get_settings().serving_refresh_min,
            "load_avg": os.getloadavg()[0],
            "quick": args.quick,
        }
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
