"""Benchmark: one hourly `retail_batch` run (Airflow `dag.test()`, Cosmos, spark-submit) against a plain
`dbt build` of the same models, at demo size and at 1M line items, in the same process and stack.

On its own embedded PostgreSQL (with an Airflow metadata database, as `retail up` prepares it), with
bench/dbt_build.py's generated facts and the marts built once untimed (so both timed builds are the
hourly incremental kind), times per size: `retail_batch` by `dag.test()`, split by task kind (the Spark
step finds no lake data, so it costs what starting it costs); then one `retail.dbt.run_dbt` build.

    python -m bench.batch_dag [--quick] [--lines N]   # --quick: demo size only

Last line: one JSON object (dag_s, dbt_build_s, ratio, line_items, the same with `_1m` for the large
size, tasks per kind, load_avg). Goal (2 cores): dag_s <= 90 at demo size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench import dbt_build  # the sibling script's data generator
from retail.settings import get_settings
from stack import airflow as airflow_stack
from stack import stack
from tests.scratch import scratch_settings

DEMO_LINES = 21_500  # `retail demo`: 14 days, ~10,000 baskets of ~2.15 lines
FULL_LINES = 1_000_000


def _kind(task_id: str) -> str:
    if task_id.startswith("recompute"):
        return "spark_recompute"
    if task_id.startswith("build_"):
        return "dbt_builds"
    return "other_tasks"


def timed_dag_run(settings: Any, generator: Any, loads: list[float]) -> tuple[float, dict[str, Any]]:
    """One retail_batch run whose lookback closes before the generated data starts."""
    from airflow.dag_processing.dagbag import DagBag

    from retail.settings import get_settings
    from stack.airflow import DAGS_FOLDER

    get_settings.cache_clear()
    bag = DagBag(dag_folder=str(DAGS_FOLDER / "retail_batch.py"))
    if bag.import_errors:
        raise SystemExit(f"retail_batch does not parse: {bag.import_errors}")
    with psycopg.connect(settings.writer_dsn) as conn:
        first = conn.execute("select min(event_ts) from raw.transactions").fetchone()[0]
    loads.append(round(os.getloadavg()[0], 2))
    started = time.perf_counter()
    run = bag.get_dag("retail_batch").test(logical_date=first - timedelta(days=2))
    elapsed = time.perf_counter() - started
    kinds: dict[str, Any] = {}
    for ti in run.get_task_instances():
        entry = kinds.setdefault(_kind(ti.task_id), {"count": 0, "seconds": 0.0})
        entry["count"] += 1
        entry["seconds"] = round(entry["seconds"] + (ti.duration or 0.0), 2)
        if ti.task_id == "source_freshness":
            # It judges the generated data's age (a slow machine makes it stale), not the run: reported.
            kinds["source_freshness"] = str(ti.state)
        elif str(ti.state) != "success":
            raise SystemExit(f"retail_batch task {ti.task_id} ended {ti.state}; see its log above")
    print(f"retail_batch run: {elapsed:.1f} s; by task kind: {kinds}")
    return elapsed, kinds


def measure(settings: Any, generator: Any, lines: int, loads: list[float]) -> dict[str, Any]:
    from retail.dbt import run_dbt

    with psycopg.connect(settings.writer_dsn, autocommit=True) as conn:
        end = conn.execute("select date_trunc('minute', now()) - interval '30 minutes'").fetchone()[0]
        generator.load_dimensions(conn, settings)
        line_items = generator.generate(conn, lines, generator.literal(end.isoformat()))
    generator.analyze_sources(settings)
    if not run_dbt(settings, ["build", "--quiet"]).success:  # untimed: both timed builds are hourly ones
        raise SystemExit("the untimed first dbt build failed; see the dbt output above")
    dag_s, kinds = timed_dag_run(settings, generator, loads)
    dbt_s = generator.timed_build(settings, "plain dbt build", loads, [])
    return {
        "dag_s": round(dag_s, 2),
        "dbt_build_s": round(dbt_s, 2),
        "line_items": line_items,
        "tasks": kinds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="demo size only")
    parser.add_argument("--lines", type=int, help=f"line items of the large run (default {FULL_LINES:,})")
    args = parser.parse_args()

    generator = dbt_build
    state = Path(tempfile.mkdtemp(prefix="retail-bench-batch-"))
    os.chmod(state, 0o755)  # the embedded PostgreSQL runs as another user when we are root
    settings = scratch_settings(state / ".retail")
    results: dict[str, Any] = {}
    loads: list[float] = []
    try:
        settings = stack.up(settings, report=lambda line: None)
        airflow_stack.prepare(settings)
        # Airflow reads its configuration at import, and the DAG's tasks read RETAIL_* settings.
        os.environ.update(airflow_stack.environment(settings))
        os.environ["RETAIL_BATCH_STREAM_QUIET_S"] = "0"
        # One try per task: a retry's backoff would be timed as the run's work.
        os.environ["RETAIL_BATCH_TASK_RETRIES"] = "0"
        get_settings.cache_clear()
        results["demo"] = measure(settings, generator, DEMO_LINES, loads)
        if not args.quick:
            results["large"] = measure(settings, generator, args.lines or FULL_LINES, loads)
    finally:
        stack.down(settings)
        shutil.rmtree(state, ignore_errors=True)

    demo = results["demo"]
    line = {
        "dag_s": demo["dag_s"],
        "dbt_build_s": demo["dbt_build_s"],
        "ratio": round(demo["dag_s"] / demo["dbt_build_s"], 2),
        "line_items": demo["line_items"],
        "tasks": demo["tasks"],
        "load_avg": loads,
    }
    if "large" in results:
        large = results["large"]
        line.update(
            dag_1m_s=large["dag_s"],
            dbt_build_1m_s=large["dbt_build_s"],
            ratio_1m=round(large["dag_s"] / large["dbt_build_s"], 2),
            line_items_1m=large["line_items"],
        )
    print(
        f"retail_batch at demo size: {demo['dag_s']:.1f} s (goal <= 90 s); "
        f"plain dbt build {demo['dbt_build_s']:.1f} s"
    )
    print(json.dumps(line))


if __name__ == "__main__":
    main()
