"""Benchmark: server-side render time of every dashboard page over 1M line items in the marts.

On its own embedded PostgreSQL: bench/dbt_build.py's facts (30 days ending 30 minutes ago), a week of
operational rows (stream progress, dead letters, late events, DAG task outcomes), the marts built and
two ML runs; then each page rendered with Streamlit's AppTest in this process, as the server would:
cold (query cache emptied: a user after the TTL), warm (straight after), and as baseline the very SQL
statements of the cold render, timed alone with psycopg as the analyst role.

    python -m bench.dashboard_pages [--quick] [--lines N] [--repeat N]

Last line: one JSON object (max_page_s, pages, warm_pages, sql_s, line_items, load_avg).
Goal (2 cores): every page <= 1.5 s at 1,000,000 line items.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import dbt_build  # the sibling script's data generator
from ml.jobs import run_all, run_segmentation
from retail.dbt import run_dbt
from retail.settings import PROJECT_ROOT, Settings, get_settings
from stack import stack
from tests.scratch import scratch_settings

FULL_LINES = 1_000_000
QUICK_LINES = 50_000
APP = PROJECT_ROOT / "dashboard" / "streamlit_app.py"
PAGES = ["overview", "sales", "refunds", "stores", "customers", "recommendations", "pipeline_health"]

OPS_ROWS = """
insert into ops.stream_progress (query_name, run_id, batch_id, reported_at, input_rows,
                                 input_rows_per_s, processed_rows_per_s, batch_duration_ms, watermark,
                                 rows_written, dead_letters)
select query_name, 'bench', batch_id, now() - ({batches} - batch_id) * interval '2 seconds',
       100, 1000.0, 1200.0, 400,
       now() - ({batches} - batch_id) * interval '2 seconds' - interval '5 minutes', 100, 0
from unnest(array['raw_transactions', 'raw_refunds', 'product_metrics_minute', 'lake_transactions',
                  'lake_refunds']) as query_name,
     generate_series(1, {batches}) as batch_id;

insert into ops.dead_letter (topic, kafka_partition, kafka_offset, reason, error, payload)
select case when n % 3 = 0 then 'refunds' else 'transactions' end, n % 3, 10000000 + n,
       (array['invalid_json', 'missing_field', 'unknown_product', 'unknown_store'])[1 + n % 4], 'bench', 'x'
from generate_series(1, 2000) as n;

insert into ops.late_events (event_minute, topic, late_events, max_lateness)
select date_trunc('minute', now()) - n * interval '7 minutes', 'transactions', 1 + n % 5, interval '8 minutes'
from generate_series(1, 1400) as n;

insert into ops.task_runs (dag_id, run_id, task_id, state, started_at, finished_at)
select dag_id, 'scheduled__' || n, 'task_' || task, case when n % 50 = 0 then 'failed' else 'success' end,
       now() - n * interval '1 hour', now() - n * interval '1 hour' + interval '1 minute'
from unnest(array['retail_dimensions', 'retail_batch', 'retail_ml']) as dag_id,
     generate_series(1, 168) as n, generate_series(1, 5) as task;
analyze;
"""


def prepare_data(settings: Settings, lines: int, quick: bool) -> int:
    with psycopg.connect(settings.writer_dsn, autocommit=True) as conn:
        end = conn.execute("select date_trunc('minute', now()) - interval '30 minutes'").fetchone()[0]
        started = time.perf_counter()
        dbt_build.load_dimensions(conn, settings)
        line_items = dbt_build.generate(conn, lines, dbt_build.literal(end.isoformat()))
        # A week of progress reports of 5 queries every 2 s (1.5M rows); a day in quick mode.
        for statement in OPS_ROWS.format(batches=43_200 if quick else 302_400).split(";\n"):
            if statement.strip():
                conn.execute(statement)
        print(f"generated {line_items:,} line items and ops rows in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    result = run_dbt(settings, ["build", "--quiet"])
    if not result.success:
        raise SystemExit(f"dbt build failed: {result.exception or 'see the dbt output above'}")
    print(f"dbt build in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    run_all(settings)
    run_segmentation(settings)
    print(f"ML runs in {time.perf_counter() - started:.1f} s")
    with psycopg.connect(settings.admin_dsn, autocommit=True) as conn:
        conn.execute("analyze")
    return line_items


class Recorder:
    """Wraps the dashboard's read_frame: remembers every statement a render ran, for the SQL baseline."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any]] = []

    def install(self) -> None:
        from dashboard import queries

        original = queries.read_frame

        def recording(sql: str, params: Any = None) -> Any:
            self.statements.append((sql, params))
            return original(sql, params)

        queries.read_frame = recording


def render(page: str, cold: bool, recorder: Recorder | None = None) -> float:
    """Seconds of one server-side run of the page's script (cache emptied first when cold)."""
    from streamlit.testing.v1 import AppTest

    from dashboard.consumer_lag import broker_ends
    from dashboard.queries import _live, _slow

    at = AppTest.from_file(str(APP), default_timeout=300)
    at.run()
    if cold:
        for cache in (_live, _slow, broker_ends):
            cache.clear()
    if recorder:
        recorder.statements.clear()  # the frame's first run rendered the default page
    started = time.perf_counter()
    if page == "overview":
        at.run()
    else:
        at.switch_page(f"app_pages/{page}.py").run()
    elapsed = time.perf_counter() - started
    if at.exception or at.error:
        problems = [item.value for item in [*at.exception, *at.error]]
        raise SystemExit(f"page {page} failed: {problems}")
    return elapsed


def bare_sql(settings: Settings, statements: list[tuple[str, Any]]) -> list[tuple[float, str]]:
    """Seconds of each statement run alone, with the first words of its SQL."""
    timings = []
    with psycopg.connect(settings.analyst_dsn, autocommit=True) as conn:
        for sql, params in statements:
            started = time.perf_counter()
            conn.execute(sql, params).fetchall()
            timings.append((time.perf_counter() - started, " ".join(sql.split())[:70]))
    return timings


def point_dashboard(settings: Settings) -> None:
    """The dashboard's settings (read from RETAIL_* by get_settings) at this benchmark's stack."""
    for name, value in {
        "RETAIL_STATE_DIR": str(settings.state_dir),
        "RETAIL_PG_PORT": str(settings.pg_port),
        "RETAIL_PG_DATABASE": settings.pg_database,
        "RETAIL_KAFKA_PORT": str(settings.kafka_port),
        "RETAIL_HOST": settings.host,
    }.items():
        os.environ[name] = value
    get_settings.cache_clear()


def measure(settings: Settings, repeat: int) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    point_dashboard(settings)
    recorder = Recorder()
    recorder.install()
    cold, warm, sql = {}, {}, {}
    for page in PAGES:
        render(page, cold=True)  # first touch: imports, connection, PostgreSQL's buffers
        timings = []
        for _ in range(repeat):
            timings.append(render(page, cold=True, recorder=recorder))
        cold[page] = statistics.median(timings)
        page_statements = list(recorder.statements)
        runs = [bare_sql(settings, page_statements) for _ in range(repeat)]
        sql[page] = statistics.median(sum(seconds for seconds, _ in run) for run in runs)
        warm[page] = render(page, cold=False)
        print(
            f"{page:<16} cold {cold[page]:5.2f} s (runs {', '.join(f'{t:.2f}' for t in timings)}), "
            f"warm {warm[page]:5.2f} s, its SQL alone {sql[page]:5.2f} s ({len(page_statements)} statements)"
        )
        for seconds, text in sorted(runs[-1], reverse=True)[:2]:
            print(f"{'':<18}{seconds:5.2f} s  {text}")
    return cold, warm, sql


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_LINES:,} line items")
    parser.add_argument("--lines", type=int, help=f"line items (default {FULL_LINES:,})")
    parser.add_argument("--repeat", type=int, default=3, help="cold renders per page (median reported)")
    parser.add_argument("--keep", action="store_true", help="leave the state folder (and print it)")
    args = parser.parse_args()
    target_lines = args.lines or (QUICK_LINES if args.quick else FULL_LINES)

    state = Path(tempfile.mkdtemp(prefix="retail-bench-dashboard-"))
    # The generated baskets have no planted affinities: a low confidence floor still yields rules (by
    # chance, lift > 1) for the recommendations page to show.
    settings = scratch_settings(state / ".retail", ml_min_confidence=0.05)
    try:
        settings = stack.up(settings, report=lambda line: None)
        line_items = prepare_data(settings, target_lines, args.quick)
        load_before = round(os.getloadavg()[0], 2)
        cold, warm, sql = measure(settings, args.repeat)
        load_after = round(os.getloadavg()[0], 2)
    finally:
        stack.down(settings)
        if args.keep:
            print(f"state folder kept: {state}", file=sys.stderr)
        else:
            shutil.rmtree(state, ignore_errors=True)

    slowest = max(cold, key=cold.__getitem__)
    print(f"slowest page: {slowest} {cold[slowest]:.2f} s (goal <= 1.5 s at 1M line items)")
    print(
        json.dumps(
            {
                "max_page_s": round(cold[slowest], 3),
                "pages": {page: round(seconds, 3) for page, seconds in cold.items()},
                "warm_pages": {page: round(seconds, 3) for page, seconds in warm.items()},
                "sql_s": {page: round(seconds, 3) for page, seconds in sql.items()},
                "line_items": line_items,
                "load_avg": [load_before, load_after],
            }
        )
    )


if __name__ == "__main__":
    main()
