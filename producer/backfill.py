"""Historical backfill: D days of past events into Kafka, as fast as the broker takes them.

Customers are split across N worker processes (customer i to worker i mod N), each with its own
idempotent KafkaProducer: one kafka-python process tops out below the throughput goal. Each customer's
events come from a generator seeded by (seed, window start, customer number), so a seed and window give
the same events whatever N is. Workers send in event-time order and stay within
`backfill.max_skew_minutes` of event time of each other, so the speed layer's watermark sees few late events.

    summary = backfill(settings, days=30, seed=7)
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import math
import multiprocessing as mp
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from producer.catalog import Catalog, load_catalog
from producer.config import Faults, SimulationConfig, load_simulation_config
from producer.faults import is_duplicate, lateness_ms, malformed_events
from producer.kafka_sink import EventSender
from producer.simulator import MINUTE_MS, Customer, SimulatedEvent, Simulator
from producer.summary import ProduceSummary
from retail.settings import Settings
from retail.topics import ensure_topics

DEFAULT_SEED = 42
# Generate this many messages, then send them: alternating in chunks keeps each phase's code and data
# in the CPU caches, measured at ~10% less CPU per event than sending each message as it is generated.
SEND_CHUNK = 4096
BARRIER_TIMEOUT_S = 600.0
# Workers report their event-time progress, and may be held back, once per this many minutes.
SKEW_STEP_MINUTES = 60


class BackfillError(RuntimeError):
    """A backfill worker failed; the message carries its traceback."""


class Outgoing(NamedTuple):
    """One message to send and what it counts as: "transaction", "refund", "duplicate" or a
    malformed kind's name."""

    role: str
    key: bytes
    payload: bytes
    counts_as: str
    late: bool = False


@dataclass(frozen=True)
class BackfillPlan:
    """Everything a worker process needs (picklable: workers are spawned, not forked)."""

    config: SimulationConfig
    catalog: Catalog
    faults: Faults
    seed: int
    start_ms: int
    end_ms: int
    workers: int

    @property
    def max_skew_steps(self) -> int:
        return max(1, round(self.config.backfill.max_skew_minutes / SKEW_STEP_MINUTES))

    @property
    def run_key(self) -> str:
        # The window start is part of the key: two different backfills never reuse ids.
        return f"{self.seed}/{self.start_ms}"


def window(days: float, end: datetime | None = None) -> tuple[int, int]:
    """[start, end) in epoch milliseconds; the end defaults to now, truncated to the minute."""
    if days <= 0:
        raise ValueError("days must be positive")
    end = end or datetime.now(UTC).replace(second=0, microsecond=0)
    if end.tzinfo is None:
        raise ValueError("end must carry a UTC offset")
    start = end - timedelta(days=days)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def shard_customers(simulator: Simulator, plan: BackfillPlan, worker: int) -> list[Customer]:
    return [
        simulator.customer(plan.run_key, index, plan.start_ms, plan.end_ms)
        for index in range(worker, plan.config.customers, plan.workers)
    ]


def shard_stream(simulator: Simulator, plan: BackfillPlan, worker: int) -> Iterator[Outgoing | None]:
    """A worker's messages in send order; `None` marks the end of each hour of event time (the
    points where `SkewLimit` may hold the worker back)."""
    faults = plan.faults
    customers = {customer.index: customer for customer in shard_customers(simulator, plan, worker)}
    visits = [
        visit
        for customer in customers.values()
        for visit in simulator.visits(customer, plan.start_ms, plan.end_ms)
    ]
    visits.sort()  # Visit tuples order by (time, customer, number): the same whatever the sharding

    faults_active = faults.active
    pending: list[tuple[int, int, Outgoing]] = []
    sequence = 0

    def hold(due_ms: int, outgoing: Outgoing) -> None:
        nonlocal sequence
        sequence += 1
        heapq.heappush(pending, (due_ms, sequence, outgoing))

    def valid(event: SimulatedEvent, counts_as: str) -> Iterator[Outgoing]:
        delay = lateness_ms(event.entropy, faults)
        outgoing = Outgoing(event.topic, event.key, event.payload, counts_as, late=delay > 0)
        copies = [outgoing]
        if is_duplicate(event.entropy, faults):
            copies.append(Outgoing(event.topic, event.key, event.payload, "duplicate", late=delay > 0))
        if delay:
            for copy in copies:
                hold(event.ts_ms + delay, copy)
        else:
            yield from copies

    def due(until_ms: int) -> Iterator[Outgoing]:
        while pending and pending[0][0] < until_ms:
            yield heapq.heappop(pending)[2]

    if worker == 0:
        for malformed in malformed_events(simulator, faults, plan.run_key, plan.start_ms, plan.end_ms):
            event = malformed.event
            hold(event.ts_ms, Outgoing(event.topic, event.key, event.payload, malformed.kind.value))

    step_ms = SKEW_STEP_MINUTES * MINUTE_MS
    steps = math.ceil((plan.end_ms - plan.start_ms) / step_ms)
    step_end = plan.start_ms + step_ms
    steps_done = 0
    for visit in visits:
        while visit.ts_ms >= step_end:
            yield from due(step_end)
            yield None
            steps_done += 1
            step_end += step_ms
        while pending and pending[0][0] <= visit.ts_ms:  # inline `due`: this runs once per visit
            yield heapq.heappop(pending)[2]
        customer = customers[visit.customer]
        sale = simulator.transaction(
            customer.rng,
            customer_id=customer.customer_id,
            archetype=customer.archetype,
            store=visit.store,
            channel=visit.channel,
            ts_ms=visit.ts_ms,
        )
        event = sale.event
        if faults_active:
            yield from valid(event, "transaction")
        else:
            yield Outgoing(event.topic, event.key, event.payload, "transaction")
        refund = sale.refund
        if refund is not None and refund.ts_ms < plan.end_ms:
            for outgoing in valid(refund, "refund"):
                hold(refund.ts_ms, outgoing)
    while steps_done < steps:
        yield from due(step_end)
        yield None
        steps_done += 1
        step_end += step_ms
    # Events held back past the window's end (late sends) go out last.
    yield from due(2**62)


def simulate_backfill(plan: BackfillPlan, worker: int = 0) -> Iterator[Outgoing]:
    """The messages of one worker without a broker (tests, previews)."""
    simulator = Simulator(plan.config, plan.catalog)
    for outgoing in shard_stream(simulator, plan, worker):
        if outgoing is not None:
            yield outgoing


def count_outgoing(summary: ProduceSummary, outgoing: Outgoing) -> None:
    kind = outgoing.counts_as
    if kind == "transaction":
        summary.transactions += 1
    elif kind == "refund":
        summary.refunds += 1
    elif kind == "duplicate":
        summary.duplicates += 1
    else:
        summary.malformed[kind] += 1
    if outgoing.late and kind != "duplicate":
        summary.late += 1


@dataclass
class WorkerResult:
    worker: int
    summary: ProduceSummary | None
    started: float
    finished: float
    cpu_s: float = 0.0
    error: str | None = None


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector ~100× less often while generating.

    The simulation allocates millions of short-lived objects without cycles; at the default threshold
    (700 allocations) the collector runs every few baskets and rescans a heap holding the whole visit
    schedule, measured at ~5% of a worker's CPU. The previous thresholds are restored afterwards.
    """
    previous = gc.get_threshold()
    gc.set_threshold(100_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


class SkewLimit:
    """Keeps a worker at most `max_steps` steps of event time ahead of the slowest worker.

    Looser than a barrier on purpose: a barrier at every step makes all workers wait for whichever was
    descheduled last, which on a busy 2-core machine cost a third of the throughput; a bounded lead
    keeps the merged stream ordered to within the skew at almost no cost.
    """

    def __init__(self, positions: object, worker: int, max_steps: int, abort: object) -> None:
        self.positions, self.worker, self.max_steps, self.abort = positions, worker, max_steps, abort

    def reached(self, step: int) -> None:
        positions = self.positions
        positions[self.worker] = step  # type: ignore[index]
        while step - min(positions) > self.max_steps:  # type: ignore[call-overload]
            if self.abort.is_set():  # type: ignore[attr-defined]
                raise BackfillError("stopped: another backfill worker failed")
            time.sleep(0.002)


def run_worker(
    settings: Settings,
    plan: BackfillPlan,
    worker: int,
    start: threading.Barrier | None,
    limit: SkewLimit | None,
    progress: Callable[[int], None],
) -> WorkerResult:
    """Generate and send one shard. `start` lines the workers up (the throughput window is shared),
    `limit` bounds how far ahead in event time this worker may run; both None for a single worker."""
    sender = EventSender(settings, client_id=f"retail-backfill-{worker}")
    summary = ProduceSummary(mode="backfill")
    try:
        simulator = Simulator(plan.config, plan.catalog)
        sender.warm_up()
        if start is not None:
            start.wait(BARRIER_TIMEOUT_S)
        started = time.time()
        cpu_started = time.process_time()
        step = 0
        chunk: list[Outgoing] = []
        with fewer_collections():
            for outgoing in shard_stream(simulator, plan, worker):
                if outgoing is None:
                    step += 1
                    if limit is not None:
                        limit.reached(step)
                    continue
                chunk.append(outgoing)
                if outgoing.counts_as == "transaction" and not outgoing.late:
                    summary.transactions += 1
                else:
                    count_outgoing(summary, outgoing)
                if len(chunk) >= SEND_CHUNK:
                    _send_chunk(sender, chunk, progress)
            _send_chunk(sender, chunk, progress)
    except BaseException:
        if start is not None:
            start.abort()
        sender.producer.close(timeout=5)
        raise
    sender.finish(summary)
    return WorkerResult(worker, summary, started, time.time(), time.process_time() - cpu_started)


def _send_chunk(sender: EventSender, chunk: list[Outgoing], progress: Callable[[int], None]) -> None:
    send = sender.send
    for outgoing in chunk:
        send(outgoing.role, outgoing.key, outgoing.payload)
    progress(len(chunk))
    chunk.clear()


def _worker_process(
    settings: Settings,
    plan: BackfillPlan,
    worker: int,
    start: threading.Barrier,
    positions: object,
    abort: object,
    counters: object,
    results: mp.Queue,
) -> None:
    """Entry point of a spawned worker: report a result or the traceback, never die silently."""

    def progress(sent: int) -> None:
        counters[worker] += sent  # type: ignore[index]  # one slot per worker: no lock needed

    limit = SkewLimit(positions, worker, plan.max_skew_steps, abort)
    try:
        results.put(run_worker(settings, plan, worker, start, limit, progress))
    except BaseException:
        results.put(WorkerResult(worker, None, 0.0, 0.0, error=traceback.format_exc()))


def _root_cause(collected: list[WorkerResult], results: mp.Queue) -> str:
    """The first worker's error that is not just the stop another worker's failure caused."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            collected.append(results.get(timeout=0.2))
        except queue.Empty:
            break
    failed = [result for result in collected if result.error]
    failed.sort(key=lambda result: "another backfill worker failed" in (result.error or ""))
    return f"backfill worker {failed[0].worker} failed:\n{failed[0].error}"


def estimated_messages(plan: BackfillPlan) -> int:
    """Rough message count of a plan, for the progress bar only."""
    days = (plan.end_ms - plan.start_ms) / 86_400_000
    per_customer_day = sum(a.share * a.visits_per_week for a in plan.config.archetypes.values()) / 7
    return max(1, int(plan.config.customers * days * per_customer_day * (1 + plan.config.refunds.rate)))


def backfill(
    settings: Settings,
    days: float,
    *,
    seed: int = DEFAULT_SEED,
    end: datetime | None = None,
    workers: int | None = None,
    config: SimulationConfig | None = None,
    faults: Faults | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ProduceSummary:
    """Send `days` of history ending at `end` (default: now) to the transactions and refunds topics.

    `workers` defaults to the CPU count. `faults` defaults to the config's `faults` section (all off).
    `progress(sent, estimated_total)` is called from this process while workers run.
    """
    config = config or load_simulation_config()
    workers = max(1, workers or os.cpu_count() or 1)
    start_ms, end_ms = window(days, end)
    plan = BackfillPlan(
        config=config,
        catalog=load_catalog(settings),
        faults=faults if faults is not None else config.faults,
        seed=seed,
        start_ms=start_ms,
        end_ms=end_ms,
        workers=workers,
    )
    Simulator(config, plan.catalog)  # fail fast on config/catalog mismatches, before spawning anything
    ensure_topics(settings)
    total = estimated_messages(plan)
    began = time.monotonic()
    if workers == 1:
        sent = 0

        def report(count: int) -> None:
            nonlocal sent
            sent += count
            if progress:
                progress(sent, total)

        results = [run_worker(settings, plan, 0, None, None, report)]
    else:
        results = _run_processes(settings, plan, total, progress)
    summary = ProduceSummary(mode="backfill", workers=workers)
    for result in sorted(results, key=lambda r: r.worker):
        assert result.summary is not None
        summary.merge(result.summary)
    summary.elapsed_s = time.monotonic() - began
    summary.active_s = max(r.finished for r in results) - min(r.started for r in results)
    summary.cpu_s = sum(r.cpu_s for r in results)
    return summary


def _run_processes(
    settings: Settings,
    plan: BackfillPlan,
    total: int,
    progress: Callable[[int, int], None] | None,
) -> list[WorkerResult]:
    # Spawned, not forked: the caller may have threads (kafka clients, test servers) a fork would copy
    # in a locked state.
    context = mp.get_context("spawn")
    start = context.Barrier(plan.workers)
    positions = context.Array("q", plan.workers, lock=False)  # event-time step each worker reached
    abort = context.Event()
    counters = context.Array("q", plan.workers, lock=False)
    results: mp.Queue = context.Queue()
    processes = [
        context.Process(
            target=_worker_process,
            args=(settings, plan, worker, start, positions, abort, counters, results),
            name=f"retail-backfill-{worker}",
            daemon=True,
        )
        for worker in range(plan.workers)
    ]
    for process in processes:
        process.start()
    collected: list[WorkerResult] = []
    try:
        while len(collected) < plan.workers:
            try:
                collected.append(results.get(timeout=0.2))
            except queue.Empty:
                if not any(process.is_alive() for process in processes) and results.empty():
                    raise BackfillError("backfill workers exited without reporting a result") from None
            if progress:
                progress(sum(counters), total)
            if any(result.error for result in collected):
                abort.set()
                start.abort()
                raise BackfillError(_root_cause(collected, results))
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
    return collected
