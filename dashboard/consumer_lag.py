"""Consumer lag of the speed layer: Kafka's end offset of each partition minus the position landed.

The landed position comes from ops.landed_offsets (highest offset committed to a raw table or the dead
letter, exactly once with its batch), the end offsets from the broker itself, asked with kafka-python.
The embedded Tansu broker reports the first offset of a partition's last record batch as its end, so on
it the lag reads a little low (never below 0 here).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from dashboard.db import DashboardError, settings
from dashboard.queries import LIVE_TTL_S, landed_offsets
from retail.topics import kafka_security


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def end_offsets(
    bootstrap: str, topics: tuple[str, ...], security: tuple[tuple[str, str], ...] = ()
) -> pd.DataFrame:
    """(topic, kafka_partition, end_offset) for every partition of the topics; `security` holds the
    client's SASL/TLS arguments (a tuple: part of the cache key)."""
    try:
        consumer = KafkaConsumer(
            **dict(security),
            bootstrap_servers=bootstrap,
            client_id="retail-dashboard",
            request_timeout_ms=3000,
            bootstrap_timeout_ms=3000,
            enable_auto_commit=False,
        )
    except KafkaError as error:
        raise DashboardError(
            f"Kafka at {bootstrap} unreachable ({type(error).__name__}); consumer lag unknown. "
            "Start it with `retail up`, or check RETAIL_KAFKA_BOOTSTRAP."
        ) from None
    try:
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        ends = consumer.end_offsets(partitions) if partitions else {}
    except KafkaError as error:
        raise DashboardError(
            f"Kafka at {bootstrap} did not answer ({type(error).__name__}); lag unknown."
        ) from None
    finally:
        consumer.close()
    return pd.DataFrame(
        [(tp.topic, tp.partition, offset) for tp, offset in ends.items()],
        columns=["topic", "kafka_partition", "end_offset"],
    )


def consumer_lag() -> pd.DataFrame:
    """Per topic partition: Kafka's end offset, the next offset to land, and the lag in messages."""
    current = settings()
    table_topic = {"raw.transactions": current.transactions_topic, "raw.refunds": current.refunds_topic}
    landed = landed_offsets()
    landed["topic"] = landed["topic"].fillna(landed["landed_in"].map(table_topic))
    positions = landed.groupby(["topic", "kafka_partition"], as_index=False)["last_offset"].max()
    ends = end_offsets(
        current.bootstrap_servers,
        (current.transactions_topic, current.refunds_topic),
        tuple(sorted(kafka_security(current).items())),
    )
    lag = ends.merge(positions, on=["topic", "kafka_partition"], how="left")
    landed_position = pd.to_numeric(lag["last_offset"], errors="coerce").fillna(-1)
    lag["next_offset"] = (landed_position + 1).astype("int64")
    lag["lag"] = (lag["end_offset"] - lag["next_offset"]).clip(lower=0).astype("int64")
    return lag[["topic", "kafka_partition", "end_offset", "next_offset", "lag"]].sort_values(
        ["topic", "kafka_partition"]
    )
