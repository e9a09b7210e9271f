"""Tables as a manager reads them: human column labels, money with thousands separators and cents,
rates as percentages, counts with separators and times in the display time zone (RETAIL_DISPLAY_TZ).

Every `st.dataframe` of the dashboard goes through `table`, so a column is labelled and formatted the
same on every page. Only the display changes: the frame keeps its column names and exact values (the
tests compare them with SQL), and times stay the same instants, converted to the display zone.
"""

from __future__ import annotations

from typing import Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from dashboard.db import settings

Kind = Literal["money", "count", "rate", "decimal", "time", "text"]

# printf-style formats of Streamlit's number columns (`,` groups thousands whatever the browser locale).
MONEY_FORMAT = "$%,.2f"
COUNT_FORMAT = "%,d"
DECIMAL_FORMAT = "%,.2f"
TIME_FORMAT = "YYYY-MM-DD HH:mm:ss"

# Column name -> (label, kind). A column missing here is labelled from its name ("store_name" -> "Store
# name") and shown as it is; add it here when its name or format is not what a reader expects.
COLUMNS: dict[str, tuple[str, Kind]] = {
    # sales, stores, refunds
    "product_id": ("Product id", "text"),
    "product_name": ("Product", "text"),
    "category": ("Category", "text"),
    "store_name": ("Store", "text"),
    "store_format": ("Format", "text"),
    "units": ("Units sold", "count"),
    "revenue": ("Revenue", "money"),
    "refunds": ("Refunds", "money"),
    "net_revenue": ("Net revenue", "money"),
    "amount": ("Refunded", "money"),
    "refund_rate": ("Refund rate", "rate"),
    # customers
    "rfm_segment": ("Segment", "text"),
    "customers": ("Customers", "count"),
    "monetary": ("Net value", "money"),
    "average_monetary": ("Average net value", "money"),
    "average_frequency": ("Average baskets", "decimal"),
    "average_recency_hours": ("Average hours since last purchase", "decimal"),
    "cluster": ("Cluster", "count"),
    "cluster_label": ("Cluster name", "text"),
    # recommendations
    "rule_rank": ("Rank", "count"),
    "bought": ("Bought", "text"),
    "also_buy": ("Also buy", "text"),
    "baskets": ("Baskets", "count"),
    "support": ("Support", "rate"),
    "confidence": ("Confidence", "rate"),
    "lift": ("Lift", "decimal"),
    "score": ("Score", "decimal"),
    "because_of": ("Because of", "text"),
    # pipeline health
    "query_name": ("Query", "text"),
    "reported_at": ("Reported at", "time"),
    "batch_id": ("Batch", "count"),
    "input_rows": ("Rows in batch", "count"),
    "input_rows_per_s": ("Rows/s in", "decimal"),
    "processed_rows_per_s": ("Rows/s processed", "decimal"),
    "batch_duration_ms": ("Batch duration (ms)", "count"),
    "watermark": ("Watermark", "time"),
    "rows_written": ("Rows written", "count"),
    "dead_letters": ("Dead letters", "count"),
    "topic": ("Topic", "text"),
    "kafka_partition": ("Partition", "count"),
    "end_offset": ("End offset", "count"),
    "next_offset": ("Next offset to land", "count"),
    "lag": ("Lag (messages)", "count"),
    "table_name": ("Table", "text"),
    "latest_at": ("Latest", "time"),
    "age": ("Age", "text"),
    "reason": ("Reason", "text"),
    "messages": ("Messages", "count"),
    "dag_id": ("DAG", "text"),
    "run_id": ("Run", "text"),
    "state": ("State", "text"),
    "logical_date": ("Logical date", "time"),
    "started_at": ("Started", "time"),
    "finished_at": ("Finished", "time"),
    "tasks_succeeded": ("Tasks succeeded", "count"),
    "tasks_failed": ("Tasks failed", "count"),
    "hour_start": ("Hour", "time"),
    "is_hour_closed": ("Closed by batch", "text"),
    "window_products": ("Windows × products", "count"),
    "mismatching": ("Mismatching", "count"),
    "units_delta": ("Units delta", "count"),
    "gross_revenue_delta": ("Revenue delta", "money"),
    "refund_amount_delta": ("Refunds delta", "money"),
    "raised_at": ("Raised at", "time"),
    "severity": ("Severity", "text"),
    "source": ("Source", "text"),
    "message": ("Message", "text"),
}


def display_zone() -> ZoneInfo:
    """The zone every shown time is converted to (validated when the settings load)."""
    return ZoneInfo(settings().display_tz)


def humanize(name: str) -> str:
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def spec(name: str) -> tuple[str, Kind]:
    return COLUMNS.get(name, (humanize(name), "text"))


def column_config(frame: pd.DataFrame, zone: ZoneInfo) -> dict[str, Any]:
    """A labelled, formatted Streamlit column per column of the frame."""
    config: dict[str, Any] = {}
    for name in frame.columns:
        label, kind = spec(str(name))
        if kind == "money":
            config[name] = st.column_config.NumberColumn(label, format=MONEY_FORMAT)
        elif kind == "count":
            config[name] = st.column_config.NumberColumn(label, format=COUNT_FORMAT)
        elif kind == "rate":
            config[name] = st.column_config.NumberColumn(label, format="percent")
        elif kind == "decimal":
            config[name] = st.column_config.NumberColumn(label, format=DECIMAL_FORMAT)
        elif kind == "time":
            config[name] = st.column_config.DatetimeColumn(f"{label} ({zone.key})", format=TIME_FORMAT)
        else:
            config[name] = st.column_config.Column(label)
    return config


def in_zone(frame: pd.DataFrame, zone: ZoneInfo) -> pd.DataFrame:
    """The frame with its time columns converted to `zone` (the same instants; naive times are UTC)."""
    shown = frame.copy()
    for name in shown.columns:
        if spec(str(name))[1] != "time":
            continue
        moments = pd.to_datetime(shown[name], utc=True, errors="coerce")
        shown[name] = moments.dt.tz_convert(zone)
    return shown


def numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """Money and counts arrive as Decimal from PostgreSQL: floats, so the number formats apply."""
    shown = frame.copy()
    for name in shown.columns:
        if spec(str(name))[1] in ("money", "rate", "decimal") and shown[name].dtype == object:
            shown[name] = pd.to_numeric(shown[name], errors="coerce")
    return shown


def table(frame: pd.DataFrame, columns: list[str] | None = None) -> None:
    """`st.dataframe` of the frame (or of `columns` of it) with labels, formats and local times."""
    zone = display_zone()
    shown = numeric(in_zone(frame[columns] if columns else frame, zone))
    st.dataframe(shown, hide_index=True, column_config=column_config(shown, zone))
