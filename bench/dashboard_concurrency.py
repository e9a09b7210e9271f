"""Benchmark: 20 dashboard sessions at once over 1M line items, each page's p95 render time.

Builds the data of bench/dashboard.py (its `prepare_data`: line items, refunds, a week of ops rows, the
marts, two ML runs) in its own embedded PostgreSQL, then renders pages with Streamlit's AppTest from
N threads at once: one process, one session per thread, shared caches and the dashboard's connection
pool, as the Streamlit server runs its sessions. Each round empties the query caches first (every
viewer's TTL expired together: the worst case), then every session renders every page in its own order.
The baseline is the same rounds with one session, in the same run.

    python bench/dashboard_concurrency.py [--quick] [--lines N] [--sessions 20] [--rounds 3]

Prints per-page p50/p95 for both, then one JSON line: max_p95_s (the slowest page's p95 with N
sessions), p95_s (page -> seconds), baseline_p95_s (one session), sessions, line_items, load_avg.
Goal (2 cores): every page's p95 <= 2 s with 20 sessions at 1,000,000 line items.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == BENCH_DIR:
    sys.path.pop(0)  # bench/ml.py would shadow the ml package

from retail.settings import Settings, get_settings  # noqa: E402
from retail.stack import stack  # noqa: E402
from retail.stack.scratch import scratch_settings  # noqa: E402

# Data, pages and the AppTest render of bench/dashboard.py (a sibling script, not a package).
_spec = importlib.util.spec_from_file_location("bench_dashboard", BENCH_DIR / "dashboard.py")
assert _spec is not None and _spec.loader is not None
single = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(single)

GOAL_S = 2.0


def clear_caches() -> None:
    from dashboard.consumer_lag import end_offsets
    from dashboard.queries import _live, _slow

    for cache in (_live, _slow, end_offsets):
        cache.clear()


def run_rounds(sessions: int, rounds: int) -> dict[str, list[float]]:
    """Render seconds per page over all sessions and rounds."""
    timings: dict[str, list[float]] = defaultdict(list)
    failures: list[str] = []
    lock = threading.Lock()

    def session(seed: int) -> None:
        order = list(single.PAGES)
        random.Random(seed).shuffle(order)  # viewers do not all open the same page at once
        for page in order:
            try:
                seconds = single.render(page, cold=False)
            except SystemExit as error:  # render() reports a failed page this way
                failures.append(str(error))
                return
            with lock:
                timings[page].append(seconds)

    for round_number in range(rounds):
        clear_caches()
        barrier_start = [
            threading.Thread(target=session, args=(round_number * 1000 + n,)) for n in range(sessions)
        ]
        for thread in barrier_start:
            thread.start()
        for thread in barrier_start:
            thread.join()
        if failures:
            raise SystemExit(f"{len(failures)} renders failed, first: {failures[0]}")
    return timings


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]


def point_dashboard(settings: Settings) -> None:
    for name, value in {
        "RETAIL_STATE_DIR": str(settings.state_dir),
        "RETAIL_PG_PORT": str(settings.pg_port),
        "RETAIL_PG_DATABASE": settings.pg_database,
        "RETAIL_KAFKA_PORT": str(settings.kafka_port),
        "RETAIL_HOST": settings.host,
    }.items():
        os.environ[name] = value
    get_settings.cache_clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{single.QUICK_LINES:,} line items, 1 round")
    parser.add_argument("--lines", type=int, help=f"line items (default {single.FULL_LINES:,})")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every session rendering every page")
    args = parser.parse_args()
    target_lines = args.lines or (single.QUICK_LINES if args.quick else single.FULL_LINES)
    rounds = 1 if args.quick else args.rounds

    state = Path(tempfile.mkdtemp(prefix="retail-bench-dashboard-concurrency-"))
    settings = scratch_settings(state / ".retail", ml_min_confidence=0.05)
    try:
        settings = stack.up(settings, report=lambda line: None)
        line_items = single.prepare_data(settings, target_lines, args.quick)
        point_dashboard(settings)
        for page in single.PAGES:  # first touch: imports, the pool's connections, PostgreSQL's buffers
            single.render(page, cold=True)
        load_before = round(os.getloadavg()[0], 2)
        baseline = run_rounds(1, rounds)
        concurrent = run_rounds(args.sessions, rounds)
        load_after = round(os.getloadavg()[0], 2)
    finally:
        stack.down(settings)
        shutil.rmtree(state, ignore_errors=True)

    p95_s = {page: round(p95(concurrent[page]), 3) for page in single.PAGES}
    baseline_p95_s = {page: round(p95(baseline[page]), 3) for page in single.PAGES}
    for page in single.PAGES:
        print(
            f"{page:<16} {args.sessions} sessions: p50 {statistics.median(concurrent[page]):5.2f} s, "
            f"p95 {p95_s[page]:5.2f} s ({len(concurrent[page])} renders); one session: "
            f"p50 {statistics.median(baseline[page]):5.2f} s, p95 {baseline_p95_s[page]:5.2f} s"
        )
    slowest = max(p95_s, key=p95_s.__getitem__)
    print(f"slowest p95: {slowest} {p95_s[slowest]:.2f} s with {args.sessions} sessions (goal <= {GOAL_S} s)")
    print(
        json.dumps(
            {
                "max_p95_s": p95_s[slowest],
                "p95_s": p95_s,
                "baseline_p95_s": baseline_p95_s,
                "sessions": args.sessions,
                "rounds": rounds,
                "line_items": line_items,
                "load_avg": [load_before, load_after],
            }
        )
    )


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"bench took {time.perf_counter() - started:.0f} s", file=sys.stderr)
