"""Sending events to Kafka with the delivery guarantees the platform relies on.

Idempotence matters because the speed layer's exactly-once sink assumes a retried batch is not written
twice to the log. kafka-python 3 enables it by default but *silently disables it* (a log warning) when
`acks`, `retries` or the in-flight limit conflict, so we set every one of them explicitly and then check
the constructed producer (`verify_idempotence`) instead of trusting the arguments.

Every send's future gets an errback; failed messages are re-sent after the flush and whatever still fails
is counted and reported, never dropped silently. Nothing flushes per message: batching (`linger_ms`,
large `batch_size`) is where the throughput comes from.
"""

from __future__ import annotations

from collections import Counter

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from producer.summary import ProduceSummary
from retail.settings import Settings
from retail.topics import kafka_security

# Retries of the producer itself (per batch, within delivery_timeout_ms); must be > 0 for idempotence.
PRODUCER_RETRIES = 10
# Our own re-sends of messages whose future failed after the producer's retries ran out.
RESEND_ATTEMPTS = 3
FLUSH_TIMEOUT_S = 120.0
SWEEP_EVERY = 20_000


class IdempotenceDisabledError(RuntimeError):
    """The Kafka producer came up without idempotence; sending would risk duplicate log entries."""


def producer_config(settings: Settings, client_id: str) -> dict[str, object]:
    return {
        **kafka_security(settings),
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": client_id,
        "enable_idempotence": True,
        # Idempotence requires acks=all, retries > 0 and at most 5 in-flight requests per connection.
        "acks": "all",
        "retries": PRODUCER_RETRIES,
        "max_in_flight_requests_per_connection": 5,
        # Batch instead of flushing: wait up to 20 ms to fill batches of up to 512 KiB.
        "linger_ms": 20,
        "batch_size": 512 * 1024,
        "delivery_timeout_ms": 120_000,
        "request_timeout_ms": 30_000,
    }


def verify_idempotence(producer: KafkaProducer) -> None:
    """Raise unless the producer really runs idempotent (config and transaction manager agree)."""
    config = producer.config
    problems = []
    if not config.get("enable_idempotence"):
        problems.append("enable_idempotence is off")
    if config.get("acks") not in (-1, "all"):
        problems.append(f"acks={config.get('acks')!r} (needs all)")
    if not config.get("retries"):
        problems.append("retries=0")
    if config.get("max_in_flight_requests_per_connection", 0) > 5:
        problems.append("more than 5 requests in flight per connection")
    if getattr(producer, "_transaction_manager", None) is None:
        problems.append("no producer-id manager (kafka-python disabled idempotence)")
    if problems:
        raise IdempotenceDisabledError(
            "the Kafka producer is not idempotent: "
            + "; ".join(problems)
            + "; producer settings conflict with enable_idempotence (see producer.kafka_sink)"
        )


def has_producer_id(producer: KafkaProducer) -> bool:
    """True once the broker assigned the producer id that sequence-numbers every batch."""
    manager = getattr(producer, "_transaction_manager", None)
    return bool(manager is not None and manager.has_producer_id())


def create_producer(settings: Settings, client_id: str = "retail-producer") -> KafkaProducer:
    producer = KafkaProducer(**producer_config(settings, client_id))
    try:
        verify_idempotence(producer)
    except IdempotenceDisabledError:
        producer.close(timeout=5)
        raise
    return producer


class EventSender:
    """One idempotent producer plus the bookkeeping that proves nothing was lost."""

    def __init__(self, settings: Settings, client_id: str = "retail-producer") -> None:
        self.producer = create_producer(settings, client_id)
        self.topics = {"transactions": settings.transactions_topic, "refunds": settings.refunds_topic}
        self.sent: Counter[str] = Counter()
        self._failures: list[tuple[str, bytes, bytes, BaseException]] = []
        # (future, topic, key, payload) of sends not known to be acknowledged yet. Checked in sweeps
        # rather than with a callback per send: a callback costs more than the check, and the list is
        # swept every SWEEP_EVERY sends so it never grows with the size of the run.
        self._unconfirmed: list[tuple[object, str, bytes, bytes]] = []
        self._next_sweep = SWEEP_EVERY

    def warm_up(self) -> None:
        """Fetch the topics' metadata now, so the first sends do not wait for it."""
        for topic in self.topics.values():
            self.producer.partitions_for(topic)

    def send(self, role: str, key: bytes, payload: bytes) -> None:
        """Queue one message; `role` is "transactions" or "refunds"."""
        topic = self.topics[role]
        unconfirmed = self._unconfirmed
        unconfirmed.append((self.producer.send(topic, payload, key=key), topic, key, payload))
        self.sent[topic] += 1
        if len(unconfirmed) >= self._next_sweep:
            self._sweep()
            self._next_sweep = len(self._unconfirmed) + SWEEP_EVERY

    def _sweep(self) -> None:
        """Forget acknowledged sends, keep failed ones for re-sending, leave pending ones."""
        still_pending = []
        for entry in self._unconfirmed:
            future = entry[0]
            if not future.is_done:  # type: ignore[attr-defined]
                still_pending.append(entry)
            elif future.exception is not None:  # type: ignore[attr-defined]
                self._failures.append((entry[1], entry[2], entry[3], future.exception))  # type: ignore[attr-defined]
        self._unconfirmed = still_pending

    def finish(self, summary: ProduceSummary) -> ProduceSummary:
        """Flush, re-send failures, close; fill the summary's delivery counts."""
        try:
            self.producer.flush(timeout=FLUSH_TIMEOUT_S)
            self._sweep()
            if self._unconfirmed:
                raise KafkaTimeoutError(f"{len(self._unconfirmed)} sends still unacknowledged after flush")
            failures, self._failures = self._failures, []
            acknowledged = Counter(self.sent)
            for topic, key, payload, error in failures:
                acknowledged[topic] -= 1
                if self._resend(topic, key, payload):
                    summary.retried += 1
                    acknowledged[topic] += 1
                else:
                    summary.failed += 1
                    if len(summary.failure_examples) < 5:
                        summary.failure_examples.append(
                            f"{topic} key={key.decode(errors='replace')}: {error}"
                        )
            summary.per_topic.update(acknowledged)
        finally:
            self.producer.close(timeout=FLUSH_TIMEOUT_S)
        return summary

    def _resend(self, topic: str, key: bytes, payload: bytes) -> bool:
        for _ in range(RESEND_ATTEMPTS):
            try:
                self.producer.send(topic, payload, key=key).get(timeout=FLUSH_TIMEOUT_S)
                return True
            except KafkaError:
                continue
        return False
