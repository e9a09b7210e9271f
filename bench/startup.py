"""Benchmark: seconds from `retail up` to every service healthy, and from `retail down` to all stopped.

Runs the real CLI with the default stack (PostgreSQL, the broker, the stream, Airflow's four processes,
the dashboard) in a fresh state folder on free ports: a cold `up` (initdb, secrets, migrations, topics,
Airflow's metadata database), then `down` / warm `up` rounds with the data on disk. The warm start and
the stop are the everyday figures; each service's time comes from the CLI's own lines (when each
reported healthy; the stop times `down` reports).

    python -m bench.startup [--quick]

Prints figures, then one JSON line: startup_s (cold), warm_up_s, down_s (best of the rounds), services,
up_by_service, down_by_service. Goals: startup_s <= 120, warm_up_s <= 45, down_s <= 15.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.scratch import free_port

RETAIL = [sys.executable, "-m", "stack.cli"]
GOALS = {"startup_s": 120, "warm_up_s": 45, "down_s": 15}


def timed(command: list[str], env: dict[str, str]) -> tuple[float, dict[str, float], str]:
    """Seconds the command took, seconds until each `<service>: healthy` line, and its output."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    healthy: dict[str, float] = {}
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if match := re.match(r"\s*(\S+): healthy$", line):
            healthy[match.group(1)] = round(time.perf_counter() - started, 1)
    elapsed = time.perf_counter() - started
    output = "".join(lines)
    if process.wait() != 0:
        raise SystemExit(f"{' '.join(command[2:])} failed: {output.strip()[-2000:]}")
    return elapsed, healthy, output


def stop_times(output: str) -> dict[str, float]:
    """The per-service seconds of `retail down`'s `stopped: name 1.2s, ...` line."""
    match = re.search(r"^stopped: (.*)$", output, re.MULTILINE)
    pairs = re.findall(r"(\S+) ([\d.]+)s", match.group(1)) if match else []
    return {name: float(seconds) for name, seconds in pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one down/up round instead of three")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="retail-bench-startup-"))
    env = {
        **os.environ,
        "RETAIL_STATE_DIR": str(state / ".retail"),
        "RETAIL_PG_PORT": str(free_port()),
        "RETAIL_KAFKA_PORT": str(free_port()),
        "RETAIL_AIRFLOW_PORT": str(free_port()),
        "RETAIL_SPARK_UI_PORT": str(free_port()),
        "RETAIL_DBT_DOCS_PORT": str(free_port()),
        "RETAIL_DASHBOARD_PORT": str(free_port()),
        # Measure a slow start rather than fail it (a shared 2-core machine can take minutes).
        "RETAIL_HEALTH_TIMEOUT_S": os.environ.get("RETAIL_HEALTH_TIMEOUT_S", "600"),
    }
    for name in ("RETAIL_PG_URL", "RETAIL_KAFKA_BOOTSTRAP"):
        env.pop(name, None)
    rounds: list[tuple[float, dict[str, float], float, dict[str, float]]] = []
    try:
        cold, _, _ = timed([*RETAIL, "up"], env)
        status = subprocess.run([*RETAIL, "status"], env=env, capture_output=True, text=True).stdout
        services = [line.split()[0] for line in status.splitlines() if line.split()[1:2] == ["up"]]
        for _ in range(1 if args.quick else 3):
            down, _, output = timed([*RETAIL, "down"], env)
            warm, healthy, _ = timed([*RETAIL, "up"], env)
            rounds.append((down, stop_times(output), warm, healthy))
    finally:
        subprocess.run([*RETAIL, "down"], env=env, capture_output=True)
        shutil.rmtree(state, ignore_errors=True)

    down, down_by_service, _, _ = min(rounds, key=lambda run: run[0])
    _, _, warm, up_by_service = min(rounds, key=lambda run: run[2])
    load = os.getloadavg()[0]
    print(f"cold up (initdb, secrets, migrations, topics): {cold:6.1f} s  (goal {GOALS['startup_s']})")
    print(f"warm up (best of {len(rounds)}):                    {warm:6.1f} s  (goal {GOALS['warm_up_s']})")
    print(f"  healthy after: {', '.join(f'{name} {s:.1f}' for name, s in up_by_service.items())}")
    print(f"down (best of {len(rounds)}):                       {down:6.1f} s  (goal {GOALS['down_s']})")
    print(f"  stopped after: {', '.join(f'{name} {s:.1f}' for name, s in down_by_service.items())}")
    print(f"all rounds (down, warm up): {[(round(d, 1), round(w, 1)) for d, _, w, _ in rounds]}")
    print(f"services healthy: {', '.join(services)}; load average at the end {load:.1f}")
    print(
        json.dumps(
            {
                "startup_s": round(cold, 2),
                "warm_up_s": round(warm, 2),
                "down_s": round(down, 2),
                "services": services,
                "up_by_service": up_by_service,
                "down_by_service": down_by_service,
                "load_average": round(load, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
