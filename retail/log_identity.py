"""Which Kafka log the stream's offsets belong to, and what was lost when that log was replaced.

Offsets alone cannot tell a restarted memory-only broker (or a recreated topic) from the old log, so the
source stores the broker's topic id with its offsets, and `LogEnds` keeps the highest end offset seen
per (topic, topic id, partition) in ops.kafka_log_ends, never lower. When the id changes,
`lost_messages` (end seen - checkpointed offset) counts exactly the old log's messages that never
landed, and `LossPolicy` says whether the query alerts or fails. A broker without topic ids gets one
record of ends per topic, kept with the fingerprint of its last record. `probe_real_ends` is the one
place that corrects the embedded broker's under-reported ends (used by the source and the dashboard).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from retail.record_probe import fingerprint_offset, record_bytes

LossPolicy = Literal["alert", "fail"]
ALERT_SOURCE = "speed_layer"
_NO_TOPIC_ID = {"", "00000000-0000-0000-0000-000000000000", "AAAAAAAAAAAAAAAAAAAAAA"}


def topic_id_of(consumer, topic: str) -> str:
    """The broker's id of the topic ('' when it gives none); a recreated topic gets a new one."""
    topic_id = consumer._client.cluster.topic_id(topic)
    text = str(topic_id) if topic_id is not None else ""
    return "" if text in _NO_TOPIC_ID else text


def probe_real_ends(
    consumer, tps: list, reported: dict, timeout_ms: int, mean_bytes: dict[int, float] | None = None
) -> dict:
    """True end offsets from kafka-python's `end_offsets` answer (`reported`): the embedded broker (Tansu,
    memory storage) reports the base offset of a partition's last record batch as its end offset, so
    records of that last batch would look unwritten. A fetch at the reported offset returns that batch;
    its last offset + 1 is the real end. Against Apache Kafka the fetch returns nothing and the reported
    offsets stand. Assigns `consumer` to `tps`. The records fetched also give each partition's mean record
    size, put into `mean_bytes` when given (the source's byte bound), without another fetch."""
    from kafka import TopicPartition

    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, reported[tp])
    ends = dict(reported)
    for records in consumer.poll(timeout_ms=timeout_ms).values():
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            ends[tp] = max(ends[tp], record.offset + 1)
        if records and mean_bytes is not None:
            mean_bytes[records[0].partition] = sum(record_bytes(r) for r in records) / len(records)
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


def unlanded(earliest: dict[int, int], ends: dict[int, int], landed: dict[int, int]) -> dict[int, int]:
    """Per partition of one log: messages the broker holds beyond what landed (partitions with none left
    out); a partition nothing landed of counts from its earliest offset."""
    waiting = {p: end - max(landed.get(p, earliest.get(p, 0)), earliest.get(p, 0)) for p, end in ends.items()}
    return {p: n for p, n in waiting.items() if n > 0}


def broker_log_ends(consumer, topics: tuple[str, ...], timeout_ms: int) -> dict[tuple[str, str, int], int]:
    """(topic, topic id, partition) -> the true end offset of each partition the broker holds now, with
    the embedded broker's under-reported ends corrected (`probe_real_ends`)."""
    from kafka import TopicPartition

    consumer.topics()  # fresh metadata, topic ids included
    ids = {topic: topic_id_of(consumer, topic) for topic in topics}
    tps = [
        TopicPartition(topic, partition)
        for topic in topics
        for partition in sorted(consumer.partitions_for_topic(topic) or ())
    ]
    if not tps:
        return {}
    ends = probe_real_ends(consumer, tps, consumer.end_offsets(tps), timeout_ms)
    return {(tp.topic, ids[tp.topic], tp.partition): ends[tp] for tp in tps}


def arrivals_at(consumer, offsets: dict[tuple[str, int], int], timeout_ms: int) -> dict[str, datetime]:
    """Per topic, the oldest broker timestamp of the records at `offsets` ((topic, partition) -> offset;
    a fetch may return the record batch holding it from an earlier offset). Partitions not read in time,
    or records without a timestamp, are left out, and so are partitions the broker does not hold: a fetch
    from a missing topic makes the embedded broker create it, with its default partition count."""
    from kafka import TopicPartition

    tps = {
        TopicPartition(t, p): o
        for (t, p), o in offsets.items()
        if p in (consumer.partitions_for_topic(t) or ())
    }
    if not tps:
        return {}
    consumer.assign(list(tps))
    for tp, offset in tps.items():
        consumer.seek(tp, offset)
    found: dict[str, datetime] = {}
    for tp, records in consumer.poll(timeout_ms=timeout_ms).items():
        first = next((r for r in records if r.offset >= tps[tp] and r.timestamp and r.timestamp > 0), None)
        if first is not None:
            at = datetime.fromtimestamp(first.timestamp / 1000, UTC)
            found[tp.topic] = min(found.get(tp.topic, at), at)
    return found


def record_landed(cursor, offset: dict) -> None:
    """Record, in the sink's own transaction, that the batch ending at the source offset `offset` landed
    (ops.kafka_log_landed; never lowered). An offset of another source format is ignored."""
    if "topic" not in offset or "partitions" not in offset:
        return
    cursor.executemany(
        """insert into ops.kafka_log_landed (topic, topic_id, kafka_partition, next_offset)
           values (%s, %s, %s, %s)
           on conflict (topic, topic_id, kafka_partition) do update set
               next_offset = greatest(ops.kafka_log_landed.next_offset, excluded.next_offset),
               landed_at = now()""",
        [
            (offset["topic"], offset.get("topic_id", ""), int(p), int(o))
            for p, o in offset["partitions"].items()
        ],
    )


def furthest(*positions: dict[int, int]) -> dict[int, int]:
    """Per partition, the highest of several views of the landed position."""
    merged: dict[int, int] = {}
    for view in positions:
        for p, o in view.items():
            merged[p] = max(merged.get(p, o), o)
    return merged


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

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

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

    def raise_unidentified(
        self, ends: dict[int, int], last_records: Callable[[dict[int, int]], dict[int, str]]
    ) -> None:
        """A broker without topic ids: raise the ends of the one log it has ('') only while that log still
        holds the last record recorded with them, so a recreated log never raises the old log's ends and
        the lost count stays exact. `last_records(offsets)` fingerprints the broker's records at `offsets`
        (a partition it could not read in time is left out, and not raised)."""
        if not self.dsn:
            return
        rows = {p: (end, last) for p, end, last in self._rows("")}
        higher = {p: e for p, e in ends.items() if e > rows.get(p, (-1, None))[0]}
        stored = {p: rows[p][1] for p in higher if p in rows and rows[p][1]}
        if not higher:
            return
        current = last_records({p: fingerprint_offset(last) for p, last in stored.items()})
        if any(current.get(p, last) != last for p, last in stored.items()):
            return  # another log: the planner counts the old one's loss, then forgets its ends
        verified = {p: e for p, e in higher.items() if p not in stored or p in current}
        lasts = last_records({p: e - 1 for p, e in verified.items()})
        with self._connect() as conn:
            conn.cursor().executemany(
                """insert into ops.kafka_log_ends (topic, topic_id, kafka_partition, end_offset, last_record)
                   values (%s, '', %s, %s, %s)
                   on conflict (topic, topic_id, kafka_partition) do update set
                       end_offset = excluded.end_offset, last_record = excluded.last_record, seen_at = now()
                   where ops.kafka_log_ends.end_offset < excluded.end_offset""",
                [(self.topic, p, e, lasts[p]) for p, e in verified.items() if p in lasts],
            )

    def _rows(self, topic_id: str) -> list[tuple[int, int, str | None]]:
        with self._connect() as conn:
            return conn.execute(
                "select kafka_partition, end_offset, last_record from ops.kafka_log_ends"
                " where topic = %s and topic_id = %s",
                (self.topic, topic_id),
            ).fetchall()

    def forget(self, topic_id: str) -> None:
        """Drop the ends seen and landed of `topic_id`: on a broker without ids ('') a new log starts its
        own."""
        if self.dsn:
            with self._connect() as conn, conn.transaction():
                for table in ("ops.kafka_log_ends", "ops.kafka_log_landed"):
                    conn.execute(
                        f"delete from {table} where topic = %s and topic_id = %s", (self.topic, topic_id)
                    )
        self._seen.pop(topic_id, None)

    def landed(self, topic_id: str) -> dict[int, int]:
        """What the sink recorded as landed of a log (`record_landed`): ahead of the checkpoint by one
        batch when the stream stopped between the sink's commit and Spark's."""
        if not self.dsn:
            return {}
        with self._connect() as conn:
            rows = conn.execute(
                "select kafka_partition, next_offset from ops.kafka_log_landed"
                " where topic = %s and topic_id = %s",
                (self.topic, topic_id),
            ).fetchall()
        return {p: o for p, o in rows}

    def seen(self, topic_id: str, fresh: bool = False) -> dict[int, int]:
        """Highest ends seen of a log. `fresh` (and a broker without ids, '') reads them from the
        database: the job's watcher thread raises them there while the planner waits on a batch, so a
        count of lost messages must not use this planner's own last view."""
        if fresh or topic_id == "" or topic_id not in self._seen:
            rows = self._rows(topic_id) if self.dsn else []
            self._seen[topic_id] = {p: end for p, end, _ in rows}
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
