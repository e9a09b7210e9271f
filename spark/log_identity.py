"""Which Kafka log the stream's offsets belong to, and what was lost when that log was replaced.

Offsets alone cannot tell a restarted memory-only broker (or a recreated topic) from the old log: once
the new log grows past the checkpointed offset, an offset-only check reads on and silently skips the
start of the new log. So the source stores the broker's topic id with its offsets, and `LogEnds` keeps
the highest end offset anyone saw per (topic, topic id, partition) in ops.kafka_log_ends (never lower).
When the id changes, `end seen - checkpointed offset` per partition is the exact number of messages of
the old log that never landed; `LossPolicy` decides whether the query goes on (alert) or stops (fail).

`probe_real_ends` is the one place that corrects the embedded broker's under-reported end offsets; the
source's planner and the dashboard's consumer lag both use it (kafka-python only, no Spark).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

LossPolicy = Literal["alert", "fail"]
ALERT_SOURCE = "speed_layer"
_NO_TOPIC_ID = {"", "00000000-0000-0000-0000-000000000000", "AAAAAAAAAAAAAAAAAAAAAA"}


def topic_id_of(consumer, topic: str) -> str:
    """The broker's id of the topic ('' when it gives none); a recreated topic gets a new one."""
    topic_id = consumer._client.cluster.topic_id(topic)
    text = str(topic_id) if topic_id is not None else ""
    return "" if text in _NO_TOPIC_ID else text


def probe_real_ends(consumer, tps: list, reported: dict, timeout_ms: int) -> dict:
    """True end offsets from kafka-python's `end_offsets` answer (`reported`): the embedded broker (Tansu,
    memory storage) reports the base offset of a partition's last record batch as its end offset, so
    records of that last batch would look unwritten. A fetch at the reported offset returns that batch;
    its last offset + 1 is the real end. Against Apache Kafka the fetch returns nothing and the reported
    offsets stand. Assigns `consumer` to `tps`."""
    from kafka import TopicPartition

    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, reported[tp])
    ends = dict(reported)
    for records in consumer.poll(timeout_ms=timeout_ms).values():
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            ends[tp] = max(ends[tp], record.offset + 1)
    return ends


@dataclass(frozen=True)
class LogChange:
    """The log of `topic` was replaced: `lost` messages per partition of the old one never landed."""

    topic: str
    old_id: str
    new_id: str
    lost: dict[int, int]

    @property
    def total(self) -> int:
        return sum(self.lost.values())

    def message(self) -> str:
        parts = ", ".join(f"partition {p}: {n} lost" for p, n in sorted(self.lost.items()) if n)
        return (
            f"SourceDataLoss: Kafka topic {self.topic!r} was replaced (topic id {self.old_id or '?'} -> "
            f"{self.new_id or '?'}; broker restarted or topic recreated) before the stream landed all of "
            f"the old log: {parts}. Those messages are gone from the broker; the stream continues from the "
            f"start of the new log."
        )


def lost_messages(seen_ends: dict[int, int], landed: dict[int, int]) -> dict[int, int]:
    """Per partition: messages the old log held (highest end seen) beyond what landed."""
    return {p: max(end - landed.get(p, 0), 0) for p, end in seen_ends.items()}


@dataclass
class LogEnds:
    """Highest end offset seen per partition of each log of one topic; kept in Postgres when `dsn` is
    given (the planner restarts with the stream; the broker's old log is gone by then)."""

    topic: str
    dsn: str | None = field(default=None, repr=False)
    _seen: dict[str, dict[int, int]] = field(default_factory=dict, init=False)
    _conn: object | None = field(default=None, init=False, repr=False)

    @contextmanager
    def _connect(self) -> Iterator:
        """One connection kept between calls (the planner asks every trigger); dropped on an error."""
        import psycopg

        assert self.dsn is not None
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            conn = self._conn = psycopg.connect(self.dsn, connect_timeout=10, autocommit=True)
        try:
            yield conn
        except BaseException:
            conn.close()
            raise

    def raise_to(self, topic_id: str, ends: dict[int, int]) -> dict[int, int]:
        """Record `ends` where higher than seen; returns the highest ends seen, never lower than before."""
        known = self.seen(topic_id)
        higher = {p: e for p, e in ends.items() if e > known.get(p, -1)}
        if higher and self.dsn:
            with self._connect() as conn:
                conn.cursor().executemany(
                    """insert into ops.kafka_log_ends (topic, topic_id, kafka_partition, end_offset)
                       values (%s, %s, %s, %s)
                       on conflict (topic, topic_id, kafka_partition) do update set
                           end_offset = greatest(ops.kafka_log_ends.end_offset, excluded.end_offset),
                           seen_at = now()""",
                    [(self.topic, topic_id, p, e) for p, e in higher.items()],
                )
        known.update(higher)
        return dict(known)

    def seen(self, topic_id: str) -> dict[int, int]:
        if topic_id not in self._seen:
            rows: list[tuple[int, int]] = []
            if self.dsn:
                with self._connect() as conn:
                    rows = conn.execute(
                        "select kafka_partition, end_offset from ops.kafka_log_ends"
                        " where topic = %s and topic_id = %s",
                        (self.topic, topic_id),
                    ).fetchall()
            self._seen[topic_id] = dict(rows)
        return self._seen[topic_id]

    def record_change(self, change: LogChange, policy: LossPolicy) -> None:
        """Note the replacement once (a replanned batch finds it noted) and, if messages were lost, raise
        an `error` alert naming each partition's count."""
        if not self.dsn:
            return
        with self._connect() as conn, conn.transaction():
            first = conn.execute(
                """insert into ops.kafka_log_changes (topic, old_topic_id, new_topic_id, lost)
                   values (%s, %s, %s, %s) on conflict do nothing returning 1""",
                (change.topic, change.old_id, change.new_id, change.total),
            ).fetchone()
            if first and change.total:
                context = {
                    "topic": change.topic,
                    "old_topic_id": change.old_id,
                    "new_topic_id": change.new_id,
                    "lost": {str(p): n for p, n in sorted(change.lost.items())},
                    "policy": policy,
                }
                conn.execute(
                    "insert into ops.alerts (source, severity, message, context)"
                    " values (%s, 'error', %s, %s::jsonb)",
                    (ALERT_SOURCE, change.message(), json.dumps(context)),
                )
