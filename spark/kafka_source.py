"""`retail_kafka`: a PySpark Python Data Source that streams one Kafka topic through kafka-python.

The default source, as Spark's own `kafka` format needs a connector jar; it yields the built-in
source's columns (key, value, topic, partition, offset, timestamp, timestampType) as Arrow batches.
Contracts (design, batch bounds and broker quirks: README, Speed layer):

* Offsets are plain dicts ``{"topic": name, "partitions": {"0": next_offset, ...}}``; ``read`` fetches
  exactly ``[start, end)`` of each partition, so a batch replayed after a failure gets the same records.
* A new query starts at the earliest offsets; ``maxRecordsPerBatch`` and ``maxBytesPerBatch`` bound a batch.
* A checkpointed offset the broker no longer has raises `SourceDataLoss`, never a silent skip; on a broker
  without topic ids, offsets carry a fingerprint of the last record read (`retail.log_identity`).

    spark.dataSource.register(KafkaSource)
    spark.readStream.format("retail_kafka").option("bootstrap", "host:9092").option("topic", "t").load()
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kafka import TopicPartition
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadLimit, ReadMaxRows
from pyspark.sql.types import StructType

from retail.log_identity import (
    LogChange,
    LogEnds,
    LossPolicy,
    furthest,
    lost_messages,
    probe_real_ends,
    topic_id_of,
)
from retail.record_probe import (
    fingerprint,
    fingerprint_offset,
    offset_consumer,
    record_bytes,
    records_from,
    sampling_consumer,
)
from retail.topics import kafka_security, spark_kafka_security
from spark.transformations import validate_messages
from spark.validation import Dimensions, EventType, validate_batches

if TYPE_CHECKING:
    import pyarrow
    from pyspark.sql import DataFrame

    Validate = Callable[[Iterator[pyarrow.RecordBatch]], Iterator[pyarrow.RecordBatch]]

SOURCE_NAME = "retail_kafka"
# The same columns and types as Spark's built-in Kafka source.
KAFKA_COLUMNS_DDL = (
    "key binary, value binary, topic string, partition int, offset bigint, timestamp timestamp, "
    "timestampType int"
)
# What validation appends (`transformations.validate_messages`).
VALIDATION_COLUMNS_DDL = "event_json string, reason string, error string"
RESET_COMMAND = "retail stream --reset-checkpoints"
_ARROW_BATCH_ROWS = 20_000
_RECORDS_PER_TASK = 5_000
_READ_TIMEOUT_S = 60.0
# How long the planner waits for the fetch that finds a partition's real end (probe_real_ends): the broker
# answers within fetch_max_wait_ms (50) when there is nothing to return.
_PROBE_TIMEOUT_MS = 100


class SourceDataLoss(RuntimeError):
    """The broker does not hold the offsets the checkpoint expects; continuing would skip data."""


def data_loss_message(topic: str, partition: int, checkpointed: int, earliest: int, latest: int) -> str:
    if earliest > checkpointed:
        problem = f"its earliest available offset {earliest} is beyond the checkpointed offset {checkpointed}"
        cause = "records were deleted (retention) or lost"
    else:
        problem = f"its latest offset {latest} is behind the checkpointed offset {checkpointed}"
        cause = "the broker lost data or was reset"
    return (
        f"SourceDataLoss: Kafka topic {topic!r} partition {partition}: {problem} ({cause}). "
        f"The query stopped instead of skipping records. If the loss is accepted, run "
        f"`{RESET_COMMAND}` (moves the checkpoints aside; the stream re-reads every topic from its "
        f"earliest offset and the raw tables drop duplicates by event_id), then start the stream again."
    )


@dataclass(frozen=True)
class KafkaRange:
    """One partition's offset range ``[start, end)``."""

    partition: int
    start: int
    end: int


@dataclass(frozen=True)
class KafkaRanges(InputPartition):
    """Everything a worker needs to read some partitions' offset ranges: nothing else is pickled."""

    bootstrap: str
    topic: str
    ranges: tuple[KafkaRange, ...]
    # JSON of the client's SASL/TLS arguments (retail.topics.kafka_security); "{}" for plaintext.
    security: str = "{}"


def pack_ranges(ranges: Sequence[KafkaRange], max_partitions: int) -> list[tuple[KafkaRange, ...]]:
    """Groups of ranges with about the same number of records each (largest range first into the group
    with the fewest records), each group in partition order: at most `max_partitions` groups, and no
    more than one per `_RECORDS_PER_TASK` records (a small batch is one task: it costs less to start)."""
    records = sum(r.end - r.start for r in ranges)
    count = min(max_partitions, len(ranges), -(-records // _RECORDS_PER_TASK))
    groups: list[list[KafkaRange]] = [[] for _ in range(max(1, count))]
    sizes = [0] * len(groups)
    for kafka_range in sorted(ranges, key=lambda r: (r.start - r.end, r.partition)):
        smallest = sizes.index(min(sizes))
        groups[smallest].append(kafka_range)
        sizes[smallest] += kafka_range.end - kafka_range.start
    return [tuple(sorted(group, key=lambda r: r.partition)) for group in groups if group]


def _consumer(bootstrap: str, security: str = "{}"):
    # Large fetches: a partition range is read in a few round trips.
    return offset_consumer(
        bootstrap,
        security,
        client_id="retail-spark-source",
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
        max_poll_records=50_000,
    )


def _to_batch(
    keys: list, values: list, offsets: list, timestamps: list, topic: str, partition: int
) -> pyarrow.RecordBatch:
    import pyarrow as pa

    size = len(offsets)
    return pa.RecordBatch.from_arrays(
        [
            pa.array(keys, pa.binary()),
            pa.array(values, pa.binary()),
            pa.array([topic] * size, pa.string()),
            pa.array([partition] * size, pa.int32()),
            pa.array(offsets, pa.int64()),
            pa.array(timestamps, pa.int64())
            .cast(pa.timestamp("ms", tz="UTC"))
            .cast(pa.timestamp("us", tz="UTC")),
            pa.array([0] * size, pa.int32()),
        ],
        names=["key", "value", "topic", "partition", "offset", "timestamp", "timestampType"],
    )


# One consumer per Python worker process and bootstrap, kept between tasks: Spark reuses its Python
# workers, and connecting (bootstrap, API version checks) costs more than reading a small range.
_WORKER_CONSUMERS: dict[str, object] = {}


def read_ranges(part: KafkaRanges) -> Iterator[pyarrow.RecordBatch]:
    """Records ``[start, end)`` of each range, in partition and offset order; fails rather than return
    fewer."""
    key = f"{part.bootstrap}|{part.security}"
    consumer = _WORKER_CONSUMERS.pop(key, None)
    if consumer is None:
        consumer = _consumer(part.bootstrap, part.security)
    try:
        for kafka_range in part.ranges:
            yield from _read_range(consumer, part.topic, kafka_range)
    except BaseException:
        consumer.close()
        raise
    # Only a consumer that finished its reads cleanly is reused.
    _WORKER_CONSUMERS[key] = consumer


def _read_range(consumer, topic: str, part: KafkaRange) -> Iterator[pyarrow.RecordBatch]:
    if part.end <= part.start:
        return
    tp = TopicPartition(topic, part.partition)
    consumer.assign([tp])
    consumer.seek(tp, part.start)
    keys: list = []
    values: list = []
    offsets: list = []
    timestamps: list = []
    next_offset = part.start
    deadline = time.monotonic() + _READ_TIMEOUT_S
    while next_offset < part.end:
        records = consumer.poll(timeout_ms=1000).get(tp, [])
        if not records:
            if time.monotonic() > deadline:
                raise SourceDataLoss(
                    f"SourceDataLoss: Kafka topic {topic!r} partition {part.partition}: offsets "
                    f"{next_offset}..{part.end - 1} of a planned batch could not be read within "
                    f"{_READ_TIMEOUT_S:.0f}s (broker down, or data lost). Restart when the broker is "
                    f"back; if the data is gone, run `{RESET_COMMAND}`."
                )
            continue
        deadline = time.monotonic() + _READ_TIMEOUT_S
        for record in records:
            if record.offset >= part.end:
                break
            keys.append(record.key)
            values.append(record.value)
            offsets.append(record.offset)
            timestamps.append(record.timestamp)
        # Offsets may have gaps (transaction markers, compaction): continue after the last record.
        next_offset = records[-1].offset + 1
        if len(offsets) >= _ARROW_BATCH_ROWS:
            yield _to_batch(keys, values, offsets, timestamps, topic, part.partition)
            keys, values, offsets, timestamps = [], [], [], []
    if offsets:
        yield _to_batch(keys, values, offsets, timestamps, topic, part.partition)


def warm_up_workers(spark, settings) -> None:
    """Start one Python worker per task slot, each with the source's and validation's modules imported
    and a broker connection made: the first micro-batch then runs as fast as the later ones."""
    bootstrap = settings.bootstrap_servers
    security = json.dumps(kafka_security(settings), sort_keys=True)
    key = f"{bootstrap}|{security}"

    def warm(batches: Iterator[pyarrow.RecordBatch]) -> Iterator[pyarrow.RecordBatch]:
        import importlib

        importlib.import_module("retail.contracts")
        source = importlib.import_module("spark.kafka_source")
        if key not in source._WORKER_CONSUMERS:
            source._WORKER_CONSUMERS[key] = source._consumer(bootstrap, security)
        yield from batches

    slots = spark.sparkContext.defaultParallelism
    spark.range(slots, numPartitions=slots).mapInArrow(warm, "id long").collect()


@dataclass(frozen=True)
class Bounds:
    """A topic log as the broker holds it now: its id ('' when the broker gives none) and the earliest
    and (highest real) end offset per partition."""

    topic_id: str
    earliest: dict[int, int]
    latest: dict[int, int]


class KafkaStreamReader(DataSourceStreamReader):
    """Plans offset ranges on the driver; `read` runs on the workers and is stateless."""

    def __init__(
        self,
        options: Mapping[str, str],
        validate: Validate | None = None,
        ops_dsn: str | None = None,
    ) -> None:
        self.bootstrap = options["bootstrap"]
        self.security = options.get("security") or "{}"
        self.topic = options["topic"]
        limit = options.get("maxRecordsPerBatch")
        self.max_records = int(limit) if limit else None
        byte_limit = options.get("maxBytesPerBatch")
        self.max_bytes = int(byte_limit) if byte_limit else None
        self.max_partitions = int(options.get("maxPartitions") or 1_000_000)
        self.loss_policy: LossPolicy = "fail" if options.get("lossPolicy") == "fail" else "alert"
        self.validate = validate
        self.ends = LogEnds(self.topic, ops_dsn)
        self._consumer = None
        self._sampler = None
        # Set by `_replaced` on a broker without ids: the last record read could not be fetched in time.
        self._identity_unknown = False
        # Mean record size per partition in the last end probe's records.
        self._probe_sizes: dict[int, float] = {}
        self._recent_bounds: tuple[float, Bounds] | None = None

    # Broker metadata ----------------------------------------------------------------------------

    def _client(self):
        if self._consumer is None:
            self._consumer = _consumer(self.bootstrap, self.security)
        return self._consumer

    def _records_from(self, positions: dict[int, int], timeout_ms: int = 2000) -> dict[int, list]:
        if self._sampler is None:
            self._sampler = sampling_consumer(self.bootstrap, self.security)
        return records_from(self._sampler, self.topic, positions, timeout_ms)

    def _fingerprints_at(self, offsets: dict[int, int]) -> dict[int, str]:
        """Fingerprints of the records at `offsets` (a missing record fingerprints as the next one, whose
        offset differs); partitions not read in time are left out."""
        return {p: fingerprint(records[0]) for p, records in self._records_from(offsets).items()}

    def log_bounds(self, probe_timeout_ms: int = _PROBE_TIMEOUT_MS) -> Bounds:
        """The topic's log now. Its end per partition never goes below the highest end seen of the same
        log: one slow probe (a busy machine) must not look like lost data."""
        consumer = self._client()
        consumer.topics()  # fresh metadata: a recreated topic has a new id
        partitions = consumer.partitions_for_topic(self.topic)
        if not partitions:
            raise SourceDataLoss(
                f"Kafka topic {self.topic!r} does not exist on {self.bootstrap}; create it "
                "(`retail up` does) before starting the stream"
            )
        topic_id = topic_id_of(consumer, self.topic)
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        earliest = consumer.beginning_offsets(tps)
        self._probe_sizes = {}
        latest = probe_real_ends(
            consumer, tps, consumer.end_offsets(tps), probe_timeout_ms, self._probe_sizes
        )
        probed = {tp.partition: latest[tp] for tp in tps}
        if topic_id:
            seen = self.ends.raise_to(topic_id, probed)
            ends = {p: seen[p] for p in probed}
        else:
            # Without a topic id the broker's ends stand; they are recorded while the log is the same.
            self.ends.raise_unidentified(probed, self._fingerprints_at)
            ends = probed
        bounds = Bounds(topic_id, {tp.partition: earliest[tp] for tp in tps}, ends)
        self._recent_bounds = (time.monotonic(), bounds)
        return bounds

    def _confirmed_behind(self, begin: dict[int, int], bounds: Bounds) -> Bounds:
        """Ask again, with patience, while the log looks shorter than the checkpoint: only a log that
        stays shorter over several slow probes is declared another log."""
        for _ in range(3):
            if all(bounds.latest.get(p, -1) >= o for p, o in begin.items()):
                return bounds
            bounds = self.log_bounds(probe_timeout_ms=2000)
        return bounds

    def _check_retention(self, start: dict[int, int], bounds: Bounds) -> None:
        for partition, checkpointed in start.items():
            if partition not in bounds.latest:
                raise SourceDataLoss(
                    f"SourceDataLoss: Kafka topic {self.topic!r} partition {partition} (checkpointed offset "
                    f"{checkpointed}) no longer exists; the topic was recreated with fewer partitions. "
                    f"Run `{RESET_COMMAND}` if that is accepted."
                )
            earliest, latest = bounds.earliest[partition], bounds.latest[partition]
            if earliest > checkpointed or latest < checkpointed:
                raise SourceDataLoss(data_loss_message(self.topic, partition, checkpointed, earliest, latest))

    def _replaced(self, start: dict, begin: dict[int, int], bounds: Bounds) -> Bounds | None:
        """The current log when it is not the one `start` points into (None when it is the same)."""
        old_id = start.get("topic_id")
        if old_id and bounds.topic_id:
            return bounds if old_id != bounds.topic_id else None
        # No ids to compare: a log confirmed shorter than the checkpoint is another log, and so is one
        # whose record at the last checkpointed offset is not the one read there.
        confirmed = self._confirmed_behind(begin, bounds)
        if any(confirmed.latest.get(p, -1) < o for p, o in begin.items()):
            return confirmed
        differ = self._fingerprints_differ(start, begin, confirmed)
        self._identity_unknown = differ is None
        return confirmed if differ else None

    def _fingerprints_differ(self, start: dict, begin: dict[int, int], bounds: Bounds) -> bool | None:
        """Whether a record fingerprinted in `start` is not in the log any more (None: not known, the
        broker did not answer in time). Checked only for partitions with new records to read: until
        then nothing is read, and the check costs a fetch."""
        stored = {
            int(p): value
            for p, value in start.get("fingerprints", {}).items()
            if bounds.latest.get(int(p), 0) > begin.get(int(p), 0)
            and bounds.earliest.get(int(p), 0) <= fingerprint_offset(value)  # not deleted by retention
        }
        if not stored:
            return False
        found = self._fingerprints_at({p: fingerprint_offset(v) for p, v in stored.items()})
        if any(value != stored[p] for p, value in found.items()):
            return True
        return None if len(found) < len(stored) else False

    def _fingerprints(self, start: dict, end: dict[int, int], earliest: dict[int, int]) -> dict[int, str]:
        """Fingerprints of the last record before each partition's `end` (reused from `start` where the
        end did not move)."""
        kept = {int(p): v for p, v in start.get("fingerprints", {}).items()}
        prints = {p: kept[p] for p, o in end.items() if p in kept and fingerprint_offset(kept[p]) == o - 1}
        missing = {p: o - 1 for p, o in end.items() if o > earliest.get(p, 0) and p not in prints}
        return prints | self._fingerprints_at(missing)

    def _bound_bytes(self, begin: dict[int, int], end: dict[int, int]) -> dict[int, int]:
        """`end` shrunk so that the batch's estimated size stays within maxBytesPerBatch."""
        ranges = {p: o for p, o in begin.items() if end[p] > o}
        if self.max_bytes is None or not ranges:
            return end
        # Sizes from the end probe where it returned records (Tansu), else from a sample at the start.
        means = {p: size for p, size in self._probe_sizes.items() if p in ranges}
        unsampled = {p: o for p, o in ranges.items() if p not in means}
        for p, records in self._records_from(unsampled).items():
            means[p] = sum(record_bytes(r) for r in records) / len(records)
        return bound_bytes(begin, end, means, self.max_bytes)

    def _on_replaced(self, start: dict, landed: dict[int, int], bounds: Bounds) -> None:
        """Count what the old log held beyond `landed`; alert (and go on) or stop, by policy."""
        old_id = str(start.get("topic_id") or "")
        landed = furthest(landed, self.ends.landed(old_id))
        lost = lost_messages(self.ends.seen(old_id, fresh=True), landed)
        new_id = bounds.topic_id
        if not old_id or not new_id:
            # No ids: old and new log share one record of ends, which starts afresh with the new log;
            # the change is named by the last records read of the old log and the first of the new.
            old_id = "last " + ",".join(sorted(start.get("fingerprints", {}).values()))
            firsts = self._fingerprints_at({p: o for p, o in bounds.earliest.items() if bounds.latest[p] > o})
            new_id = "first " + ",".join(f"{p}@{v}" for p, v in sorted(firsts.items()))
            self.ends.forget("")
            self.ends.raise_unidentified(bounds.latest, self._fingerprints_at)
        change = LogChange(self.topic, old_id, new_id, lost)
        self.ends.record_change(change, self.loss_policy)
        if change.total and self.loss_policy == "fail":
            raise SourceDataLoss(change.message())

    def _offset(
        self,
        positions: dict[int, int],
        topic_id: str = "",
        log_start: dict | None = None,
        fingerprints: dict[int, str] | None = None,
    ) -> dict:
        offset: dict = {"topic": self.topic, "partitions": {str(p): o for p, o in sorted(positions.items())}}
        if topic_id:
            offset["topic_id"] = topic_id
        if fingerprints:
            # A broker without topic ids: the last record read per partition identifies the log.
            offset["fingerprints"] = {str(p): v for p, v in sorted(fingerprints.items())}
        if log_start is not None:
            # First offsets of a new log: the batch ending here reads from them (see `partitions`).
            offset["log_start"] = {str(p): o for p, o in sorted(log_start.items())}
        return offset

    def _positions(self, offset: dict, key: str = "partitions") -> dict[int, int]:
        if offset.get("topic") != self.topic:
            raise SourceDataLoss(
                f"the checkpoint belongs to topic {offset.get('topic')!r}, not {self.topic!r}; "
                f"use another checkpoint location or run `{RESET_COMMAND}`"
            )
        return {int(p): int(o) for p, o in offset[key].items()}

    # Spark's streaming reader API -------------------------------------------------------------------

    def initialOffset(self) -> dict:
        bounds = self.log_bounds()
        prints = None if bounds.topic_id else self._fingerprints({}, bounds.earliest, bounds.earliest)
        return self._offset(bounds.earliest, bounds.topic_id, fingerprints=prints)

    def getDefaultReadLimit(self) -> ReadLimit:
        return ReadMaxRows(self.max_records) if self.max_records else ReadAllAvailable()

    def latestOffset(self, start: dict, limit: ReadLimit) -> dict:
        begin = self._positions(start)
        bounds = self.log_bounds()
        log_start = None
        replaced = self._replaced(start, begin, bounds)
        if replaced is not None:
            self._on_replaced(start, begin, replaced)
            bounds = replaced
            begin = log_start = dict(bounds.earliest)
        else:
            self._check_retention(begin, bounds)
        # Partitions added since the last batch start at their earliest offset.
        begin = {p: begin.get(p, bounds.earliest[p]) for p in bounds.latest}
        end = admit(begin, bounds.latest, limit.max_rows) if isinstance(limit, ReadMaxRows) else bounds.latest
        end = self._bound_bytes(begin, end)
        if bounds.topic_id:
            return self._offset(end, bounds.topic_id, log_start)
        if replaced is None and self._identity_unknown:
            # The log's identity could not be checked in time (a busy broker): read nothing yet.
            end = dict(begin)
        prints = self._fingerprints({} if log_start else start, end, bounds.earliest)
        return self._offset(end, "", log_start, prints)

    def partitions(self, start: dict, end: dict) -> Sequence[InputPartition]:
        finish = self._positions(end)
        begin = self._positions(end, "log_start") if "log_start" in end else self._positions(start)
        # Spark plans a batch right after latestOffset: reuse those bounds instead of asking the broker
        # again (one round trip less per trigger). A restarted query asks afresh.
        recent = self._recent_bounds
        bounds = recent[1] if recent and time.monotonic() - recent[0] < 2.0 else self.log_bounds()
        if end.get("topic_id") and bounds.topic_id and end["topic_id"] != bounds.topic_id:
            # A batch planned on a log that is gone (replayed after a restart): its records cannot be
            # read any more. Count them as lost with the rest of that log; the next batch starts the
            # new log.
            self._on_replaced(end, begin, bounds)
            return []
        # A restarted query replays its last planned batch: the broker must still hold all of it.
        self._check_retention({p: o for p, o in begin.items() if finish.get(p, o) > o}, bounds)
        ranges = [
            KafkaRange(p, begin.get(p, bounds.earliest.get(p, 0)), stop)
            for p, stop in sorted(finish.items())
            if stop > begin.get(p, bounds.earliest.get(p, 0))
        ]
        return [
            KafkaRanges(self.bootstrap, self.topic, group, self.security)
            for group in pack_ranges(ranges, self.max_partitions)
        ]

    def read(self, partition: InputPartition) -> Iterator[pyarrow.RecordBatch]:
        assert isinstance(partition, KafkaRanges)
        records = read_ranges(partition)
        yield from self.validate(records) if self.validate is not None else records

    def commit(self, end: dict) -> None:
        """Offsets live in Spark's checkpoint, not in a consumer group: nothing to do."""

    def stop(self) -> None:
        for consumer in (self._consumer, self._sampler):
            if consumer is not None:
                consumer.close()
        self._consumer = self._sampler = None
        self.ends.close()


def admit(begin: dict[int, int], latest: dict[int, int], max_rows: int) -> dict[int, int]:
    """End offsets that admit at most `max_rows` records, shared fairly across partitions."""
    available = {p: max(latest[p] - begin[p], 0) for p in latest}
    end = dict(begin)
    budget = max_rows
    pending = {p for p, n in available.items() if n > 0}
    while budget > 0 and pending:
        share = max(budget // len(pending), 1)
        for p in sorted(pending):
            take = min(share, available[p] - (end[p] - begin[p]), budget)
            end[p] += take
            budget -= take
            if end[p] - begin[p] >= available[p]:
                pending.discard(p)
            if budget == 0:
                break
    return end


def bound_bytes(
    begin: dict[int, int], end: dict[int, int], mean_bytes: dict[int, float], max_bytes: int
) -> dict[int, int]:
    """End offsets whose estimated size (records x the partition's mean record size) fits `max_bytes`:
    every range shrunk by the same factor, but one record at least, so an oversized record still moves
    the stream. A partition without a sample counts at the largest mean sampled."""
    fallback = max(mean_bytes.values(), default=0.0)
    sizes = {p: (end[p] - begin[p]) * mean_bytes.get(p, fallback) for p in end}
    total = sum(sizes.values())
    if total <= max_bytes:
        return dict(end)
    factor = max_bytes / total
    bounded = {p: begin[p] + int((end[p] - begin[p]) * factor) for p in end}
    if bounded == {p: begin[p] for p in end}:
        widest = max(end, key=lambda p: (end[p] - begin[p], -p))
        bounded[widest] += 1
    return bounded


class KafkaSource(DataSource):
    """Options: ``bootstrap`` (host:port,...), ``topic``, optional ``maxRecordsPerBatch``,
    ``maxBytesPerBatch``, ``maxPartitions`` (input partitions per micro-batch at most), ``lossPolicy`` and
    ``security`` (JSON of kafka-python's SASL/TLS arguments)."""

    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> str:
        return KAFKA_COLUMNS_DDL

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        return KafkaStreamReader(self.options)


def validating_source(
    event_type: EventType,
    dimensions: Dimensions,
    future_tolerance_s: float = 300.0,
    ops_dsn: str | None = None,
) -> type[KafkaSource]:
    """A `KafkaSource` whose records leave validated, with the columns `validate_messages` adds.

    Defined per call so that Spark pickles the class by value with its `dimensions` (which carry the
    database address): options, being strings, would show it in query plans."""

    class ValidatingKafkaSource(KafkaSource):
        @classmethod
        def name(cls) -> str:
            return f"{SOURCE_NAME}_{event_type}"

        def schema(self) -> str:
            return f"{KAFKA_COLUMNS_DDL}, {VALIDATION_COLUMNS_DDL}"

        def streamReader(self, schema: StructType) -> DataSourceStreamReader:
            validate = validate_batches(event_type, dimensions, future_tolerance_s)
            return KafkaStreamReader(self.options, validate, ops_dsn)

    return ValidatingKafkaSource


def _builtin_kafka_stream(spark, settings, topic: str) -> DataFrame:
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.bootstrap_servers)
        .options(**spark_kafka_security(settings))
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("failOnDataLoss", "true")
        .option("maxOffsetsPerTrigger", str(settings.stream_max_records_per_batch))
        .load()
        .select("key", "value", "topic", "partition", "offset", "timestamp", "timestampType")
    )


def _python_source_stream(spark, settings, topic: str, source: type[KafkaSource]) -> DataFrame:
    spark.dataSource.register(source)
    return (
        spark.readStream.format(source.name())
        .option("bootstrap", settings.bootstrap_servers)
        .option("security", json.dumps(kafka_security(settings), sort_keys=True))
        .option("topic", topic)
        .option("maxRecordsPerBatch", str(settings.stream_max_records_per_batch))
        .option("maxBytesPerBatch", str(settings.stream_max_bytes_per_batch))
        .option("maxPartitions", str(spark.sparkContext.defaultParallelism))
        .option("lossPolicy", settings.stream_loss_policy_resolved)
        .load()
    )


def kafka_stream(spark, settings, topic: str) -> DataFrame:
    """A streaming DataFrame of one topic with Kafka's columns, from whichever source settings pick.

    `RETAIL_STREAM_SOURCE=kafka` uses Spark's built-in connector (its jar must be on the classpath, as in
    the docker-compose image); its own `failOnDataLoss` check plays the role of `SourceDataLoss`."""
    if settings.stream_source == "kafka":
        return _builtin_kafka_stream(spark, settings, topic)
    return _python_source_stream(spark, settings, topic, KafkaSource)


def validated_stream(spark, settings, topic: str, event_type: EventType, dimensions: Dimensions) -> DataFrame:
    """`validate_messages(kafka_stream(...))`: Kafka's columns plus `event_json`, `reason`, `error`.
    The Python source validates while it reads (see the module docstring)."""
    tolerance = settings.stream_future_tolerance_s
    if settings.stream_source == "kafka":
        stream = _builtin_kafka_stream(spark, settings, topic)
        return validate_messages(stream, event_type, dimensions, tolerance)
    source = validating_source(event_type, dimensions, tolerance, settings.writer_dsn)
    return _python_source_stream(spark, settings, topic, source)
