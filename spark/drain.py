"""Drain the embedded broker before it stops: `retail down` waits, up to RETAIL_STREAM_DRAIN_TIMEOUT_S,
until the stream's raw queries have committed every message the broker holds.

The embedded broker keeps its logs in memory, so whatever the stream has not landed when it stops is
gone. Waiting for the stream's checkpoints (`<checkpoint>/<query>/commits` and `offsets`) to reach the
broker's end offsets makes a plain down/up lose nothing. While waiting, the broker's ends are recorded
in ops.kafka_log_ends, so if the wait times out the next start reports the exact loss per partition.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from retail.log_identity import furthest, unlanded
from retail.settings import Settings
from spark.kafka_source import KafkaStreamReader

RAW_QUERIES = ("raw_transactions", "raw_refunds")


@dataclass(frozen=True)
class DrainResult:
    waited_s: float
    # (topic, partition) -> messages the broker holds that the stream has not committed
    pending: dict[tuple[str, int], int]

    def summary(self) -> str:
        if not self.pending:
            return f"stream: drained, every message the broker held has landed ({self.waited_s:.1f}s)"
        parts = ", ".join(f"{t}[{p}]: {n}" for (t, p), n in sorted(self.pending.items()))
        return (
            f"stream: NOT drained after {self.waited_s:.0f}s (RETAIL_STREAM_DRAIN_TIMEOUT_S); messages not "
            f"landed, lost when the broker stops: {parts}. The next start raises an alert with these counts."
        )


def committed_offset(checkpoint: Path) -> dict | None:
    """The source offset the query's last committed batch ended at (None before its first commit)."""
    commits = checkpoint / "commits"
    batches = sorted(int(p.name) for p in commits.iterdir() if p.name.isdigit()) if commits.is_dir() else []
    if not batches:
        return None
    lines = (checkpoint / "offsets" / str(batches[-1])).read_text(encoding="utf-8").splitlines()
    return json.loads(lines[-1])


def pending_messages(settings: Settings) -> dict[tuple[str, int], int]:
    """Per topic partition: messages the broker holds beyond the stream's committed offsets."""
    checkpoints = Path(urlsplit(settings.checkpoint_dir).path)
    topics = {"raw_transactions": settings.transactions_topic, "raw_refunds": settings.refunds_topic}
    pending: dict[tuple[str, int], int] = {}
    for query, topic in topics.items():
        reader = KafkaStreamReader(
            {"bootstrap": settings.bootstrap_servers, "topic": topic}, ops_dsn=settings.writer_dsn
        )
        try:
            bounds = reader.log_bounds(probe_timeout_ms=1000)
            # The sink's own record runs one batch ahead of the checkpoint when the stream stopped
            # between the two commits.
            recorded = reader.ends.landed(bounds.topic_id) if bounds.topic_id else {}
        finally:
            reader.stop()
        offset = committed_offset(checkpoints / query)
        same_log = offset is not None and offset.get("topic_id", bounds.topic_id) == bounds.topic_id
        checkpointed = {int(p): int(o) for p, o in offset["partitions"].items()} if same_log else {}
        waiting = unlanded(bounds.earliest, bounds.latest, furthest(checkpointed, recorded))
        pending.update({(topic, partition): n for partition, n in waiting.items()})
    return pending


def drain(settings: Settings, timeout_s: float, report: Callable[[str], None] = print) -> DrainResult:
    """Wait until nothing is pending or `timeout_s` passed; report progress every 10 s."""
    started = time.monotonic()
    next_report = started + 10
    while True:
        pending = pending_messages(settings)
        waited = time.monotonic() - started
        if not pending or waited >= timeout_s:
            return DrainResult(waited, pending)
        if time.monotonic() >= next_report:
            report(f"stream: draining, {sum(pending.values())} messages not landed yet ({waited:.0f}s)")
            next_report += 10
        time.sleep(0.5)


class LogEndWatcher:
    """A daemon thread of the streaming job that records the broker's log ends every `every_s` seconds,
    whether or not a micro-batch is running: if the broker dies while a batch is stuck, the next start
    still knows how many messages the old log held. With those ends it also runs the stall rule and
    writes one `warning` alert when a stall begins (again only after the stream landed or went idle);
    it counts the stall from when it first saw messages waiting, so a burst after a long idle is not
    one."""

    def __init__(self, settings: Settings, every_s: float = 2.0) -> None:
        import threading

        self._settings = settings
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-end-watcher", daemon=True)

    def start(self) -> LogEndWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        import logging

        topics = (self._settings.transactions_topic, self._settings.refunds_topic)
        readers = [
            KafkaStreamReader(
                {"bootstrap": self._settings.bootstrap_servers, "topic": topic},
                ops_dsn=self._settings.writer_dsn,
            )
            for topic in topics
        ]
        stalled = False
        waiting_since: dict[str, datetime] = {}
        try:
            while not self._stop.wait(self._every_s):
                ends: dict[tuple[str, str, int], int] | None = {}
                for reader in readers:
                    try:
                        bounds = reader.log_bounds(probe_timeout_ms=1000)
                        log = (reader.topic, bounds.topic_id)
                        if ends is not None:
                            ends.update({(*log, p): e for p, e in bounds.latest.items()})
                    except Exception as error:  # broker or database away: the queries report that
                        logging.getLogger(__name__).debug("log ends of %s not read: %s", reader.topic, error)
                        reader.stop()
                        ends = None  # an incomplete view: no stall verdict this round
                if ends:
                    stalled = self._check_stall(ends, stalled, waiting_since)
        finally:
            for reader in readers:
                reader.stop()

    def _check_stall(
        self, ends: dict[tuple[str, str, int], int], stalled: bool, waiting_since: dict[str, datetime]
    ) -> bool:
        """Whether the stream is stalled now; alerts on the change from not stalled. `waiting_since`
        (kept between calls) holds when each topic was first seen with messages waiting."""
        import logging

        import psycopg

        from retail.stream_health import read_stall, record_stall_alert

        stall_s = self._settings.stream_stall_s
        try:
            with psycopg.connect(self._settings.writer_dsn, connect_timeout=10) as conn:
                # Stall limit 0: every topic with messages waiting and nothing landed since they came.
                waiting = read_stall(conn, 0.0, ends)
                now = datetime.now(UTC)
                seen = {t: waiting_since.get(t, now) for t in (waiting.waiting if waiting else {})}
                waiting_since.clear()
                waiting_since.update(seen)
                found = read_stall(conn, stall_s, ends, waiting_since=waiting_since)
            if found and not stalled:
                record_stall_alert(self._settings.writer_dsn, found, stall_s)
        except psycopg.Error as error:  # the database is away: the queries report that
            logging.getLogger(__name__).debug("stall rule not run: %s", error)
            return stalled
        return found is not None
