"""Live mode: transactions arriving now, as a Poisson process at `rate` per second around the traffic curve.

Runs until stopped (Ctrl-C, a `stop` event, or `duration_s`), then flushes and reports: nothing queued in
the producer is lost on the way out. Refunds come from a bounded in-memory pool of recent sales (a live
run cannot wait days for the realistic delay), each at least `live.refund_min_age_seconds` after its sale.

    from producer.live import live
    summary = live(settings, rate=50, duration_s=10)
"""

from __future__ import annotations

import heapq
import math
import os
import random
import threading
import time
from bisect import bisect
from collections import deque
from collections.abc import Callable

from producer.catalog import load_catalog
from producer.config import Faults, SimulationConfig, load_simulation_config
from producer.faults import is_duplicate, lateness_ms, malformed_events
from producer.kafka_sink import EventSender
from producer.simulator import SimulatedEvent, Simulator
from producer.summary import ProduceSummary
from retail.settings import Settings
from retail.topics import ensure_topics

TICK_S = 0.05
REPORT_EVERY_S = 5.0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 50:  # normal approximation: Knuth's loop would take `mean` steps
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


class _LiveRun:
    """State of one live run; `step` produces one tick's arrivals."""

    def __init__(
        self, settings: Settings, config: SimulationConfig, faults: Faults, rate: float, seed: int
    ) -> None:
        self.config, self.faults, self.rate = config, faults, rate
        self.simulator = Simulator(config, load_catalog(settings))
        self.run_key = f"live/{seed}"
        self.rng = random.Random(f"{self.run_key}/arrivals")
        started_ms = _now_ms()
        self.customers, self.customer_cum = self.simulator.live_population(self.run_key, started_ms)
        # (sold_ms, transaction_id, key, lines); refunded entries are replaced by None.
        self.pool: deque[tuple[int, str, bytes, tuple] | None] = deque(maxlen=config.live.refund_pool_size)
        self.held: list[tuple[int, int, str, bytes, bytes, str]] = []
        self.sequence = 0
        self.malformed = deque(
            malformed_events(self.simulator, faults, self.run_key, started_ms, started_ms + 1)
        )
        self.summary = ProduceSummary(mode="live")

    def step(self, sender: EventSender, now_ms: int, elapsed_s: float) -> None:
        config, simulator, rng = self.config, self.simulator, self.rng
        strength = config.live.curve_strength
        mean = self.rate * elapsed_s * (1 - strength + strength * simulator.traffic_factor(now_ms))
        span_ms = max(1, int(elapsed_s * 1000))
        for _ in range(_poisson(rng, mean)):
            index = min(
                bisect(self.customer_cum, rng.random() * self.customer_cum[-1]), len(self.customers) - 1
            )
            customer = self.customers[index]
            profile = simulator.archetypes[customer.archetype]
            store, channel, _ = simulator.channel_and_store(rng, profile.online_share, customer.home_store)
            sale = simulator.transaction(
                rng,
                customer_id=customer.customer_id,
                archetype=customer.archetype,
                store=store,
                channel=channel,
                ts_ms=now_ms - int(rng.random() * span_ms),
            )
            self.emit(sender, sale.event, "transaction", now_ms)
            self.pool.append((sale.event.ts_ms, sale.transaction_id, sale.event.key, sale.lines))
        for _ in range(_poisson(rng, mean * config.refunds.rate)):
            self.refund_one(sender, now_ms)
        if self.malformed:
            malformed = self.malformed.popleft()
            sender.send(malformed.event.topic, malformed.event.key, malformed.event.payload)
            self.summary.malformed[malformed.kind.value] += 1
        self.send_due(sender, now_ms)

    def refund_one(self, sender: EventSender, now_ms: int) -> None:
        """Refund a random not-yet-refunded sale old enough; skip quietly if none is (early in a run)."""
        min_age_ms = self.config.live.refund_min_age_seconds * 1000
        pool = self.pool
        for _ in range(5):
            if not pool:
                return
            position = int(self.rng.random() * len(pool))
            entry = pool[position]
            if entry is None or now_ms - entry[0] < min_age_ms:
                continue
            pool[position] = None
            sold_ms, transaction_id, key, lines = entry
            refund = self.simulator.refund(self.rng, transaction_id, key, lines, sold_ms, refund_ms=now_ms)
            self.emit(sender, refund, "refund", now_ms)
            return

    def emit(self, sender: EventSender, event: SimulatedEvent, counts_as: str, now_ms: int) -> None:
        summary = self.summary
        if counts_as == "transaction":
            summary.transactions += 1
        else:
            summary.refunds += 1
        copies = 2 if is_duplicate(event.entropy, self.faults) else 1
        summary.duplicates += copies - 1
        delay = lateness_ms(event.entropy, self.faults)
        if delay:
            summary.late += 1
            for _ in range(copies):
                self.sequence += 1
                heapq.heappush(
                    self.held, (now_ms + delay, self.sequence, event.topic, event.key, event.payload, "")
                )
            return
        for _ in range(copies):
            sender.send(event.topic, event.key, event.payload)

    def send_due(self, sender: EventSender, now_ms: int) -> None:
        while self.held and self.held[0][0] <= now_ms:
            _, _, topic, key, payload, _ = heapq.heappop(self.held)
            sender.send(topic, key, payload)


def live(
    settings: Settings,
    rate: float,
    *,
    seed: int | None = None,
    duration_s: float | None = None,
    stop: threading.Event | None = None,
    config: SimulationConfig | None = None,
    faults: Faults | None = None,
    report: Callable[[ProduceSummary], None] | None = None,
) -> ProduceSummary:
    """Produce until `stop` is set, `duration_s` passes or Ctrl-C; always flushes and returns counts.

    `seed` defaults to a random one: live ids must not repeat across runs (the speed layer would take a
    rerun's events for duplicates). Held-back late events are sent at the end rather than dropped.
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    config = config or load_simulation_config()
    seed = seed if seed is not None else int.from_bytes(os.urandom(8), "big")
    run = _LiveRun(settings, config, faults if faults is not None else config.faults, rate, seed)
    ensure_topics(settings)
    sender = EventSender(settings, client_id="retail-live")
    sender.warm_up()
    began = last = time.monotonic()
    next_report = began + REPORT_EVERY_S
    deadline = began + duration_s if duration_s is not None else math.inf
    try:
        while not (stop is not None and stop.is_set()) and time.monotonic() < deadline:
            now = time.monotonic()
            run.step(sender, _now_ms(), now - last)
            last = now
            if report is not None and now >= next_report:
                report(run.summary)
                next_report = now + REPORT_EVERY_S
            pause = TICK_S - (time.monotonic() - now)
            if stop is not None:
                stop.wait(max(0.0, pause))
            elif pause > 0:
                time.sleep(pause)
    except KeyboardInterrupt:
        run.summary.interrupted = True
    finally:
        run.send_due(sender, 2**62)
        sender.finish(run.summary)
    run.summary.elapsed_s = run.summary.active_s = time.monotonic() - began
    return run.summary
