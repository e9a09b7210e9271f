"""Pipeline health: streaming queries (throughput, batch duration, watermark), consumer lag, freshness
of every raw and mart table, dead letters, late events, the last runs of each DAG, stream-vs-batch
reconciliation and recent alerts. Refreshes on its own every RETAIL_DASHBOARD_REFRESH_S seconds.

DAG runs come from ops.task_runs, written by the task callbacks every platform DAG gets from
dags.common.callbacks.DEFAULT_TASK_ARGS: the dashboard's read-only login cannot read Airflow's metadata
database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import queries
from dashboard.components import chart, count, local_time, panel, time_axis, wall_clock
from dashboard.consumer_lag import broker_arrivals, consumer_lag, current_broker_ends
from dashboard.db import settings
from dashboard.tables import table


def age(latest: object, now: datetime) -> str:
    if latest is None or pd.isna(latest):
        return "no rows"
    seconds = (now - pd.Timestamp(latest).to_pydatetime()).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit} ago"
    return f"{max(seconds, 0):.0f} s ago"


@panel
def stream_state() -> None:
    """A stopped query, a crash loop, a broker gap or a stall, with its reason, above everything else."""
    state, reason = queries.stream_health_state(current_broker_ends, broker_arrivals)
    if state == "failed":
        st.error(f"Speed layer failed: {reason}", icon=":material/error:")
    elif state == "degraded":
        st.warning(f"Speed layer degraded: {reason}", icon=":material/warning:")


@panel
def streaming_queries() -> None:
    st.subheader("Streaming queries")
    latest = queries.stream_latest()
    if latest.empty:
        st.info("No streaming progress recorded: is the speed layer running (`retail status`)?")
        return
    table(latest)
    throughput = queries.stream_throughput()
    throughput["reported_at"] = wall_clock(throughput["reported_at"])
    chart(
        alt.Chart(throughput)
        .mark_line()
        .encode(
            x=time_axis("reported_at"),
            y=alt.Y("processed_rows_per_s:Q", title="Rows/s processed (30 s average)"),
            color=alt.Color("query_name:N", title="Query"),
        )
    )


@panel
def lag() -> None:
    st.subheader("Consumer lag")
    frame = consumer_lag()
    st.metric("Messages not landed yet", count(frame["lag"].sum()))
    table(frame)


@panel
def freshness(now: datetime) -> None:
    st.subheader("Freshness")
    tables = queries.table_freshness()
    tables["age"] = [age(value, now) for value in tables["latest_at"]]
    table(tables)


@panel
def rejects() -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Dead letters (not replayed)")
        letters = queries.dead_letters()
        st.metric("Dead letters", count(letters["messages"].sum()))
        table(letters)
    with right:
        st.subheader("Late events (last 24 h of them)")
        late = queries.late_events()
        st.metric("Late events", count(late["late_events"].sum()))
        if not late.empty:
            late["event_minute"] = wall_clock(late["event_minute"])
            chart(
                alt.Chart(late)
                .mark_bar()
                .encode(x=time_axis("event_minute"), y="late_events:Q", color="topic:N")
            )


@panel
def dag_runs() -> None:
    st.subheader("Last DAG runs")
    runs = queries.dag_runs()
    if runs.empty:
        st.info("No DAG run recorded yet (Airflow tasks record their outcome when they finish).")
        return
    table(runs)


@panel
def reconciliation() -> None:
    st.subheader("Reconciliation: batch minus stream, per hour")
    hours = queries.reconciliation()
    st.metric(
        "Mismatching windows × products (closed hours)",
        count(hours.loc[hours["is_hour_closed"], "mismatching"].sum()),
    )
    table(hours)


@panel
def alerts() -> None:
    st.subheader("Recent alerts")
    recent = queries.recent_alerts()
    if recent.empty:
        st.caption("No alerts.")
        return
    table(recent)


st.title("Pipeline health")


@st.fragment(run_every=timedelta(seconds=settings().dashboard_refresh_s))
def live_health() -> None:
    now = datetime.now(UTC)
    st.caption(f"As of {local_time(now)}; refreshes every {settings().dashboard_refresh_s:g} s")
    stream_state()
    streaming_queries()
    lag()
    freshness(now)
    rejects()
    dag_runs()
    reconciliation()
    alerts()


live_health()
