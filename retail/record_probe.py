"""Small reads the stream's planner makes on the driver: the first records at given offsets, their
sizes (to bound a micro-batch in bytes) and their fingerprints (to tell a replaced log on a broker that
gives no topic ids).

Kafka has no API for a range's size in bytes or for a log's identity without topic ids, so the planner
reads a little: at most `SAMPLE_FETCH_BYTES` per partition, through its own consumer so the planner's
end-offset probes keep their positions.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping

from kafka import TopicPartition
from kafka.errors import OffsetOutOfRangeError

# Per partition and fetch: enough records to estimate their size, small enough to cost one round trip.
SAMPLE_FETCH_BYTES = 1024 * 1024


def offset_consumer(
    bootstrap: str,
    security: str = "{}",
    *,
    client_id: str,
    fetch_max_bytes: int,
    max_partition_fetch_bytes: int,
    max_poll_records: int,
):
    """A consumer that reads explicit offsets (no group, no commits, no offset reset) and never creates a
    topic: a restarted broker lacking one must not get it with its default partition count (the job
    creates the platform's topics). `security` is the JSON of kafka-python's SASL/TLS arguments."""
    import json

    from kafka import KafkaConsumer

    return KafkaConsumer(
        **json.loads(security),
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="none",
        # A fetch with nothing new returns quickly (the planner probes partition ends).
        fetch_max_wait_ms=50,
        fetch_max_bytes=fetch_max_bytes,
        max_partition_fetch_bytes=max_partition_fetch_bytes,
        max_poll_records=max_poll_records,
        request_timeout_ms=30_000,
        allow_auto_create_topics=False,
        client_id=client_id,
    )


def probe_consumer(bootstrap: str, security: Mapping[str, str], client_id: str):
    """A consumer for status checks (log ends, record timestamps): short timeouts, no group, no commits,
    and, like `offset_consumer`, it never creates a topic. Raises kafka's KafkaError when the broker
    cannot be reached."""
    from kafka import KafkaConsumer

    return KafkaConsumer(
        **security,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        request_timeout_ms=3000,
        bootstrap_timeout_ms=3000,
        allow_auto_create_topics=False,
        client_id=client_id,
    )


def sampling_consumer(bootstrap: str, security: str = "{}"):
    """A consumer whose fetches are small: it reads samples, never whole ranges."""
    return offset_consumer(
        bootstrap,
        security,
        client_id="retail-spark-planner-sample",
        fetch_max_bytes=4 * SAMPLE_FETCH_BYTES,
        max_partition_fetch_bytes=SAMPLE_FETCH_BYTES,
        max_poll_records=5_000,
    )


def records_from(consumer, topic: str, positions: Mapping[int, int], timeout_ms: int) -> dict[int, list]:
    """Per partition, the records one fetch returns from its position on (offsets below it dropped);
    a partition missing from the result returned nothing within `timeout_ms`."""
    wanted = {TopicPartition(topic, p): o for p, o in positions.items()}
    if not wanted:
        return {}
    consumer.assign(list(wanted))
    for tp, offset in wanted.items():
        consumer.seek(tp, offset)
    found: dict[int, list] = {}
    deadline = time.monotonic() + timeout_ms / 1000
    try:
        while len(found) < len(wanted):
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                break
            for tp, records in consumer.poll(timeout_ms=left_ms).items():
                kept = [r for r in records if r.offset >= wanted[tp]]
                if kept and tp.partition not in found:
                    found[tp.partition] = kept
                    consumer.pause(tp)  # its sample is taken: the next polls fetch the others only
    except OffsetOutOfRangeError:
        pass  # retention deleted a position meanwhile: the caller treats it as not answered
    finally:
        consumer.resume(*wanted)
    return found


def record_bytes(record) -> int:
    """Bytes a record brings into a batch: its key and value as stored."""
    return max(record.serialized_key_size, 0) + max(record.serialized_value_size, 0)


def fingerprint(record) -> str:
    """`offset:digest` of the record's offset, key, value and timestamp: a record of another log at the
    same offset differs in at least one of them (unless a producer wrote the very same bytes, at the same
    millisecond, in the same order)."""
    digest = hashlib.blake2b(digest_size=12)
    for part in (record.key, record.value):
        digest.update(b"\x00" if part is None else b"\x01" + len(part).to_bytes(8, "big") + part)
    digest.update(int(record.timestamp).to_bytes(8, "big", signed=True))
    return f"{record.offset}:{digest.hexdigest()}"


def fingerprint_offset(value: str) -> int:
    return int(value.split(":", 1)[0])
