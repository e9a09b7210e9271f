"""Inspect and replay ops.dead_letter.

    retail dlq list                          counts per reason and topic, then the latest records
    retail dlq replay --reason unknown_product

Replay re-submits each pending record's raw payload to the topic it came from, so it runs through the
same validation as any new message (e.g. after the missing product was loaded into raw.products), and
marks it replayed in the same Postgres transaction that selected it, after the broker acknowledged every
send. A record that is still invalid comes back as a new dead letter with its new offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kafka import KafkaProducer

from retail.db import connect
from retail.settings import Settings
from retail.topics import kafka_security


@dataclass(frozen=True)
class ReasonCount:
    reason: str
    topic: str
    pending: int
    replayed: int


@dataclass(frozen=True)
class DeadLetter:
    dead_letter_id: int
    topic: str
    kafka_partition: int | None
    kafka_offset: int | None
    reason: str
    error: str
    received_at: datetime
    replayed_at: datetime | None


def counts(settings: Settings) -> list[ReasonCount]:
    with connect(settings) as conn:
        rows = conn.execute(
            """select reason, topic, count(*) filter (where replayed_at is null),
                      count(*) filter (where replayed_at is not null)
               from ops.dead_letter group by 1, 2 order by 3 desc, 1, 2"""
        ).fetchall()
    return [ReasonCount(*row) for row in rows]


def latest(settings: Settings, reason: str | None = None, limit: int = 20) -> list[DeadLetter]:
    with connect(settings) as conn:
        rows = conn.execute(
            """select dead_letter_id, topic, kafka_partition, kafka_offset, reason, error, received_at,
                      replayed_at
               from ops.dead_letter where %(reason)s::text is null or reason = %(reason)s
               order by dead_letter_id desc limit %(limit)s""",
            {"reason": reason, "limit": limit},
        ).fetchall()
    return [DeadLetter(*row) for row in rows]


def replay(settings: Settings, reason: str, limit: int | None = None) -> int:
    """Re-submit pending dead letters with `reason` to their topics; returns how many were sent."""
    producer = KafkaProducer(
        **kafka_security(settings), bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=5
    )
    try:
        with connect(settings) as conn, conn.transaction():
            rows = conn.execute(
                """select dead_letter_id, topic, payload from ops.dead_letter
                   where reason = %s and replayed_at is null and payload is not null
                   order by dead_letter_id limit %s for update skip locked""",
                (reason, limit),
            ).fetchall()
            futures = [producer.send(topic, value=bytes(payload)) for _, topic, payload in rows]
            producer.flush()
            for future in futures:
                future.get(timeout=30)  # raises (and rolls back the marks) if the broker refused one
            conn.execute(
                "update ops.dead_letter set replayed_at = now() where dead_letter_id = any(%s)",
                ([row[0] for row in rows],),
            )
        return len(rows)
    finally:
        producer.close()
