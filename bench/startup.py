"""Benchmark: seconds from `retail up` to every service healthy.

Runs the real CLI (`retail up`) in a fresh state folder on free ports, twice: cold (first start: initdb,
generated secrets, migrations, topics) and warm (after `retail down`, data on disk). The warm start is
the everyday figure; the cold one includes one-time setup. The services counted are those `retail up`
supervises, so the figure grows as stages join the stack.

    python bench/startup.py [--quick]

Prints figures, then one JSON line: startup_s (cold), warm_startup_s, services. Goal: startup_s <= 120.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from retail.stack.scratch import free_port

RETAIL = [sys.executable, "-m", "retail.cli"]


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command[2:])} failed: {result.stderr.strip() or result.stdout.strip()}")
    return elapsed, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one warm start instead of three")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="retail-bench-startup-"))
    env = {
        **os.environ,
        "RETAIL_STATE_DIR": str(state / ".retail"),
        "RETAIL_PG_PORT": str(free_port()),
        "RETAIL_KAFKA_PORT": str(free_port()),
        "RETAIL_AIRFLOW_PORT": str(free_port()),
        "RETAIL_SPARK_UI_PORT": str(free_port()),
    }
    for name in ("RETAIL_PG_URL", "RETAIL_KAFKA_BOOTSTRAP"):
        env.pop(name, None)
    try:
        cold, _ = timed([*RETAIL, "up"], env)
        status = subprocess.run([*RETAIL, "status"], env=env, capture_output=True, text=True).stdout
        services = [line.split()[0] for line in status.splitlines() if line.split()[1:2] == ["up"]]
        warm_runs = []
        for _ in range(1 if args.quick else 3):
            timed([*RETAIL, "down"], env)
            warm, _ = timed([*RETAIL, "up"], env)
            warm_runs.append(warm)
    finally:
        subprocess.run([*RETAIL, "down"], env=env, capture_output=True)
        shutil.rmtree(state, ignore_errors=True)

    warm = min(warm_runs)
    print(f"cold start (initdb, secrets, migrations, topics): {cold:6.1f} s")
    print(f"warm start (best of {len(warm_runs)}):                    {warm:6.1f} s")
    print(f"services healthy: {', '.join(services)}")
    print(json.dumps({"startup_s": round(cold, 2), "warm_startup_s": round(warm, 2), "services": services}))


if __name__ == "__main__":
    main()
