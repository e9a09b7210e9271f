"""Benchmark: backfill throughput into the local broker versus a bare send-only kafka-python loop.

On its own embedded broker, alternating for a few rounds (fresh topics each, totals reported, so one load
spike does not decide): `producer.backfill.backfill` with N worker processes, timed from the workers'
common start to their last acknowledged send; then N processes sending the very same events,
pre-serialized before the clock starts, same producer settings, one flush. `ratio` = backfill ÷
send-only events/s (what the simulation costs); `cpu_ratio`, the same per CPU time, is what `ratio`
converges to on an idle machine. Goals (2 cores): events_per_s ≥ 10,000, ratio ≥ 0.8.

    python -m bench.producer_throughput [--quick]   # full: 20,000 customers × 60 days, 3 rounds

Last line: one JSON object (events_per_s, send_only_events_per_s, ratio, events, workers, ...).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from kafka import KafkaProducer

from producer.backfill import BackfillPlan, backfill, simulate_backfill, window
from producer.catalog import load_catalog
from producer.config import load_simulation_config
from producer.kafka_sink import producer_config
from retail.settings import Settings
from retail.topics import ensure_topics
from stack import kafka
from tests.scratch import scratch_settings

SEED = 2026
END = datetime(2026, 11, 1, tzinfo=UTC)


def start_broker(settings: Settings) -> subprocess.Popen:
    service = kafka.service(settings)
    log = (settings.state_dir / "kafka.log").open("wb")
    process = subprocess.Popen(service.command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            service.health_check()
            return process
        except Exception:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"broker did not start; see {settings.state_dir / 'kafka.log'}") from None
            time.sleep(0.2)


def send_only_worker(
    settings: Settings, plan: BackfillPlan, worker: int, barrier: object, results: mp.Queue
) -> None:
    """Send the worker's share of the same events, serialized before the clock starts."""
    messages = [
        (
            settings.transactions_topic if m.role == "transactions" else settings.refunds_topic,
            m.key,
            m.payload,
        )
        for m in simulate_backfill(plan, worker)
    ]
    producer = KafkaProducer(**producer_config(settings, f"bench-send-only-{worker}"))
    for topic in (settings.transactions_topic, settings.refunds_topic):
        producer.partitions_for(topic)  # metadata before the clock starts, as the backfill workers do
    barrier.wait()  # type: ignore[attr-defined]
    started = time.time()
    cpu_started = time.process_time()
    for topic, key, payload in messages:
        producer.send(topic, payload, key=key)
    producer.flush()
    finished = time.time()
    cpu_s = time.process_time() - cpu_started
    producer.close()
    results.put((len(messages), started, finished, cpu_s))


def send_only(settings: Settings, plan: BackfillPlan) -> tuple[int, float, float]:
    """(events, seconds from common start to last flush, CPU seconds of all processes)."""
    context = mp.get_context("spawn")
    barrier = context.Barrier(plan.workers)
    results: mp.Queue = context.Queue()
    processes = [
        context.Process(target=send_only_worker, args=(settings, plan, worker, barrier, results), daemon=True)
        for worker in range(plan.workers)
    ]
    for process in processes:
        process.start()
    collected = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
    events = sum(c[0] for c in collected)
    seconds = max(c[2] for c in collected) - min(c[1] for c in collected)
    return events, seconds, sum(c[3] for c in collected)


def topics_for(settings: Settings, phase: str, round_number: int) -> Settings:
    """Fresh topics per phase and round, so no phase appends to a log another one grew."""
    return settings.model_copy(
        update={
            "transactions_topic": f"bench_{phase}_{round_number}_tx",
            "refunds_topic": f"bench_{phase}_{round_number}_rf",
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run (seconds)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--rounds", type=int, default=None, help="alternating backfill/send-only rounds (default 3, quick 2)"
    )
    args = parser.parse_args()
    customers, days = (5_000, 30) if args.quick else (20_000, 60)
    # A plain `kill` must still stop the broker and the worker processes (the finally blocks below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rounds = args.rounds or (2 if args.quick else 3)
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="bench-producer-") as state:
        settings = scratch_settings(Path(state))
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        broker = start_broker(settings)
        # Per round: (backfill events, seconds, CPU s), (send-only events, seconds, CPU s).
        measured: list[tuple[tuple[int, float, float], tuple[int, float, float]]] = []
        try:
            config = load_simulation_config().model_copy(update={"customers": customers})
            start_ms, end_ms = window(days, END)
            plan = BackfillPlan(
                config=config,
                catalog=load_catalog(settings),
                faults=config.faults,
                seed=SEED,
                start_ms=start_ms,
                end_ms=end_ms,
                workers=args.workers,
            )
            # Rounds alternate the two phases so that a change in machine load hits both alike; the
            # figures reported are totals over all rounds.
            for round_number in range(1, rounds + 1):
                run = topics_for(settings, "backfill", round_number)
                summary = backfill(run, days, seed=SEED, end=END, workers=args.workers, config=config)
                if summary.failed:
                    raise RuntimeError(f"{summary.failed} messages failed during the backfill")
                backfill_rate = summary.events / summary.active_s
                baseline = topics_for(settings, "send_only", round_number)
                ensure_topics(baseline)
                sent, seconds, send_only_cpu = send_only(baseline, plan)
                measured.append(
                    ((summary.events, summary.active_s, summary.cpu_s), (sent, seconds, send_only_cpu))
                )
                send_only_rate = sent / seconds
                print(
                    f"round {round_number}: backfill {summary.events:,} events "
                    f"({summary.transactions:,} transactions, {summary.refunds:,} refunds) in "
                    f"{summary.active_s:.2f}s = {backfill_rate:,.0f}/s (wall incl. process start "
                    f"{summary.elapsed_s:.2f}s); send-only {sent:,} pre-serialized events in {seconds:.2f}s "
                    f"= {send_only_rate:,.0f}/s; ratio {backfill_rate / send_only_rate:.2f}; CPU µs/event "
                    f"{summary.cpu_s / summary.events * 1e6:.0f} vs {send_only_cpu / sent * 1e6:.0f}",
                    flush=True,
                )
        finally:
            broker.terminate()
            broker.wait(timeout=30)

    # Totals over all rounds (events ÷ seconds, per phase): alternating rounds see the same mix of quiet
    # and busy moments of a shared machine, and a total weighs each second equally.
    totals = [[sum(round_[phase][i] for round_ in measured) for i in range(3)] for phase in (0, 1)]
    events_per_s = totals[0][0] / totals[0][1]
    send_only_per_s = totals[1][0] / totals[1][1]
    ratio = events_per_s / send_only_per_s
    # The same comparison in CPU time per event (all processes and threads), which a neighbour's load
    # disturbs far less than wall-clock rates.
    backfill_cpu_us = totals[0][2] / totals[0][0] * 1e6
    send_only_cpu_us = totals[1][2] / totals[1][0] * 1e6
    print(
        f"{rounds} rounds with {args.workers} processes: backfill {events_per_s:,.0f} events/s, "
        f"send-only {send_only_per_s:,.0f} events/s, ratio {ratio:.2f}; CPU µs/event {backfill_cpu_us:.0f} "
        f"vs {send_only_cpu_us:.0f} (ratio {send_only_cpu_us / backfill_cpu_us:.2f}); goals: ≥ 10,000 "
        f"events/s, ratio ≥ 0.8; load average before the run {load_before:.2f}"
    )
    print(
        json.dumps(
            {
                "events_per_s": round(events_per_s, 1),
                "send_only_events_per_s": round(send_only_per_s, 1),
                "ratio": round(ratio, 3),
                "events": summary.events,
                "transactions": summary.transactions,
                "refunds": summary.refunds,
                "workers": args.workers,
                "rounds": rounds,
                "customers": customers,
                "days": days,
                "backfill_wall_s": round(summary.elapsed_s, 2),
                "backfill_cpu_us_per_event": round(backfill_cpu_us, 1),
                "send_only_cpu_us_per_event": round(send_only_cpu_us, 1),
                "cpu_ratio": round(send_only_cpu_us / backfill_cpu_us, 3),
                "load_average_before": round(load_before, 2),
                "quick": args.quick,
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
