"""Consumer lag of the speed layer: each partition's true end offset minus the position landed.

The landed position comes from ops.landed_offsets (highest offset committed to a raw table or the dead
letter, exactly once with its batch). The end comes from the broker, corrected for the embedded broker's
under-reported ends by the speed layer's own probe (`retail.log_identity.probe_real_ends`, the one place
that knows the quirk), and never below the highest end the stream recorded for the same log in
ops.kafka_log_ends: a probe that was slow on a busy machine must not make the lag look smaller.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st
from kafka.errors import KafkaError

from dashboard.db import DashboardError, settings
from dashboard.queries import LIVE_TTL_S, kafka_log_ends, landed_offsets
from retail.log_identity import arrivals_at, broker_log_ends
from retail.record_probe import probe_consumer
from retail.topics import kafka_security

# The probe's fetch returns within the broker's fetch wait when there is nothing beyond the reported end.
PROBE_TIMEOUT_MS = 500
END_COLUMNS = ["topic", "topic_id", "kafka_partition", "end_offset"]


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def broker_ends(
    bootstrap: str, topics: tuple[str, ...], security: tuple[tuple[str, str], ...] = ()
) -> pd.DataFrame:
    """(topic, topic_id, kafka_partition, end_offset) for every partition, with true end offsets;
    `security` holds the client's SASL/TLS arguments (a tuple: part of the cache key)."""
    try:
        consumer = probe_consumer(bootstrap, dict(security), "retail-dashboard")
    except KafkaError as error:
        raise DashboardError(
            f"Kafka at {bootstrap} unreachable ({type(error).__name__}); consumer lag unknown. "
            "Start it with `retail up`, or check RETAIL_KAFKA_BOOTSTRAP."
        ) from None
    try:
        ends = broker_log_ends(consumer, topics, PROBE_TIMEOUT_MS)
    except KafkaError as error:
        raise DashboardError(
            f"Kafka at {bootstrap} did not answer ({type(error).__name__}); lag unknown."
        ) from None
    finally:
        consumer.close()
    return pd.DataFrame([(*log, offset) for log, offset in ends.items()], columns=END_COLUMNS)


def current_broker_ends() -> pd.DataFrame | None:
    """The broker's true ends of the stream's topics for the stall rule, None when it does not answer
    (the rule then uses the ends the stream recorded)."""
    current = settings()
    topics = (current.transactions_topic, current.refunds_topic)
    try:
        return broker_ends(current.bootstrap_servers, topics, tuple(sorted(kafka_security(current).items())))
    except DashboardError:
        return None


def broker_arrivals(offsets: dict[tuple[str, int], int]) -> dict[str, datetime]:
    """When the oldest waiting messages reached the broker (for the stall rule); none when it does not
    answer (the rule then counts from the last landing)."""
    current = settings()
    try:
        consumer = probe_consumer(current.bootstrap_servers, kafka_security(current), "retail-dashboard")
    except KafkaError:
        return {}
    try:
        return arrivals_at(consumer, offsets, PROBE_TIMEOUT_MS)
    except KafkaError:
        return {}
    finally:
        consumer.close()


def true_ends(probed: pd.DataFrame, recorded: pd.DataFrame) -> pd.DataFrame:
    """Per partition the higher of the probed end and the end recorded for the same log (topic id);
    a broker without topic ids cannot tell logs apart, so there the probe alone counts."""
    same_log = probed.merge(
        recorded[recorded["topic_id"] != ""].rename(columns={"end_offset": "recorded_end"}),
        on=["topic", "topic_id", "kafka_partition"],
        how="left",
    )
    recorded_end = pd.to_numeric(same_log["recorded_end"], errors="coerce").fillna(-1)
    same_log["end_offset"] = pd.concat([same_log["end_offset"], recorded_end], axis=1).max(axis=1)
    return same_log[["topic", "kafka_partition", "end_offset"]].astype({"end_offset": "int64"})


def consumer_lag() -> pd.DataFrame:
    """Per topic partition: the true end offset, the next offset to land, and the lag in messages."""
    current = settings()
    topics = (current.transactions_topic, current.refunds_topic)
    table_topic = {"raw.transactions": current.transactions_topic, "raw.refunds": current.refunds_topic}
    landed = landed_offsets()
    landed["topic"] = landed["topic"].fillna(landed["landed_in"].map(table_topic))
    positions = landed.groupby(["topic", "kafka_partition"], as_index=False)["last_offset"].max()
    security = tuple(sorted(kafka_security(current).items()))
    ends = true_ends(broker_ends(current.bootstrap_servers, topics, security), kafka_log_ends(topics))
    lag = ends.merge(positions, on=["topic", "kafka_partition"], how="left")
    landed_position = pd.to_numeric(lag["last_offset"], errors="coerce").fillna(-1)
    lag["next_offset"] = (landed_position + 1).astype("int64")
    lag["lag"] = (lag["end_offset"] - lag["next_offset"]).clip(lower=0).astype("int64")
    return lag[["topic", "kafka_partition", "end_offset", "next_offset", "lag"]].sort_values(
        ["topic", "kafka_partition"]
    )
