"""Benchmark: 20 dashboard sessions at once over 1M line items, each page's p95 render time.

Builds bench/dashboard_pages.py's data (its `prepare_data`) in its own embedded PostgreSQL, starts the
real `streamlit run` (a port of 27000-27999, or from --first-port) and drives it as browsers do: one
websocket session per viewer on `/_stcore/stream`, asking for a page (`rerun_script`) and timing until
the script finished. Every viewer opens every page, in its own order, `--rounds` times, while caches
expire on their TTLs. Baseline: one session, same run, same server. --profile writes py-spy's collapsed
stacks of the server during the concurrent phase.

    python -m bench.dashboard_concurrency [--quick] [--lines N] [--sessions 20] [--rounds 3]
        [--first-port 27000] [--profile stacks.txt]

Last line: one JSON object (max_p95_s, p95_s, baseline_p95_s, sessions, rounds, line_items, load_avg).
Goal (2 cores): every page's p95 <= 2 s with 20 sessions at 1,000,000 line items.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from bench import dashboard_pages as single  # the sibling script's data and pages
from retail.settings import PROJECT_ROOT, Settings
from stack import stack
from tests.scratch import scratch_settings

GOAL_S = 2.0
RENDER_TIMEOUT_S = 600.0


def free_port(first: int = 27000, last: int = 28000) -> int:
    for port in range(first, last):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free port in {first}-{last}")


def start_dashboard(settings: Settings, port: int, log: Path) -> subprocess.Popen:
    """The real server, configured like `retail up` configures it (RETAIL_* of this stack)."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("RETAIL_")}
    environment |= {
        "RETAIL_STATE_DIR": str(settings.state_dir),
        "RETAIL_HOST": settings.host,
        "RETAIL_PG_PORT": str(settings.pg_port),
        "RETAIL_PG_DATABASE": settings.pg_database,
        "RETAIL_KAFKA_PORT": str(settings.kafka_port),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(PROJECT_ROOT / "dashboard" / "streamlit_app.py"),
            "--server.address=127.0.0.1",
            f"--server.port={port}",
            "--server.headless=true",
            "--server.fileWatcherType=none",
            "--browser.gatherUsageStats=false",
            "--runner.postScriptGC=false",
        ],
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=3):
                return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"streamlit exited ({server.returncode}); see {log}") from None
            time.sleep(0.5)
    raise SystemExit(f"streamlit did not answer within 180 s; see {log}")


def start_profiler(pid: int, output: Path) -> subprocess.Popen:
    """py-spy sampling the server (every thread) while the sessions run: where its time goes."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        raise SystemExit("--profile needs py-spy: `pip install py-spy` (or run without --profile)")
    return subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "50", "--output", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


def page_name(page: str) -> str:
    return "" if page == "overview" else page  # the default page has no URL path of its own


async def render(ws: websockets.ClientConnection, page: str) -> float:
    """Seconds from asking for a page to the server's `script_finished` (every element sent)."""
    message = BackMsg()
    message.rerun_script.page_name = page_name(page)
    message.rerun_script.query_string = ""
    started = time.perf_counter()
    await ws.send(message.SerializeToString())
    while True:
        reply = ForwardMsg()
        reply.ParseFromString(await asyncio.wait_for(ws.recv(), RENDER_TIMEOUT_S))
        kind = reply.WhichOneof("type")
        if kind == "page_not_found":
            raise SystemExit(f"page {page!r} not found")
        if kind == "delta" and reply.delta.new_element.WhichOneof("type") == "exception":
            raise SystemExit(f"page {page} raised: {reply.delta.new_element.exception.message}")
        if kind == "script_finished":
            status = reply.script_finished
            if status == ForwardMsg.FINISHED_SUCCESSFULLY:
                return time.perf_counter() - started
            if (
                status != ForwardMsg.FINISHED_EARLY_FOR_RERUN
                and status != ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY
            ):
                raise SystemExit(f"page {page} finished with status {status}")


async def viewer(url: str, seed: int, rounds: int, timings: dict[str, list[float]]) -> None:
    async with websockets.connect(url, subprotocols=["streamlit"], max_size=None, open_timeout=120) as ws:
        await render(ws, "overview")  # what a browser's first connection runs; not timed
        for _ in range(rounds):
            order = list(single.PAGES)
            random.Random(seed).shuffle(order)  # viewers do not all open the same page at once
            for page in order:
                timings[page].append(await render(ws, page))
            seed += 1


async def run_sessions(port: int, sessions: int, rounds: int) -> dict[str, list[float]]:
    url = f"ws://127.0.0.1:{port}/_stcore/stream"
    timings: dict[str, list[float]] = defaultdict(list)
    await asyncio.gather(*(viewer(url, n * 7919, rounds, timings) for n in range(sessions)))
    return timings


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{single.QUICK_LINES:,} line items, 1 round")
    parser.add_argument("--lines", type=int, help=f"line items (default {single.FULL_LINES:,})")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="times each viewer opens every page")
    parser.add_argument("--first-port", type=int, default=27000, help="the dashboard's port range start")
    parser.add_argument("--profile", type=Path, help="py-spy's collapsed stacks of the concurrent phase")
    args = parser.parse_args()
    target_lines = args.lines or (single.QUICK_LINES if args.quick else single.FULL_LINES)
    rounds = 1 if args.quick else args.rounds

    state = Path(tempfile.mkdtemp(prefix="retail-bench-dashboard-concurrency-"))
    settings = scratch_settings(state / ".retail", ml_min_confidence=0.05)
    server = None
    try:
        settings = stack.up(settings, report=lambda line: None)
        line_items = single.prepare_data(settings, target_lines, args.quick)
        port = free_port(args.first_port, args.first_port + 1000)
        server = start_dashboard(settings, port, state / "streamlit.log")
        asyncio.run(run_sessions(port, 1, 1))  # first touch: imports, the pool, PostgreSQL's buffers
        load_before = round(os.getloadavg()[0], 2)
        baseline = asyncio.run(run_sessions(port, 1, rounds))
        profiler = start_profiler(server.pid, args.profile) if args.profile else None
        concurrent = asyncio.run(run_sessions(port, args.sessions, rounds))
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=120)
        load_after = round(os.getloadavg()[0], 2)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=60)
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
    main()
