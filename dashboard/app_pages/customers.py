"""Customers: RFM segments (sizes and value), R/F/M score distributions, the K-Means clusters, and
customers moving between segments from the previous segmentation run to the latest one."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import queries
from dashboard.components import chart, count, local_time, money, panel
from dashboard.tables import table

NO_RUN = "No segmentation run yet: build the marts (`retail dbt build`), then run `retail ml run`."


def latest_run(runs: pd.DataFrame, kind: str) -> pd.Series | None:
    succeeded = runs[(runs["kind"] == kind) & (runs["status"] == "succeeded")]
    return succeeded.iloc[0] if not succeeded.empty else None


@panel
def segments() -> None:
    run = latest_run(queries.latest_model_runs(), "segmentation")
    if run is None:
        st.info(NO_RUN, icon=":material/info:")
        return
    summary = queries.segment_summary()
    summary["monetary"] = summary["monetary"].astype(float)
    st.caption(f"Run {run.run_number} over data up to {local_time(run.data_to)}, k = {run.chosen_k}")
    left, middle, right = st.columns(3)
    left.metric("Customers segmented", count(summary["customers"].sum()))
    middle.metric("Segments", count(len(summary)))
    right.metric("Net value", money(summary["monetary"].sum()))
    st.subheader("Segments")
    first, second = st.columns(2)
    chart(
        alt.Chart(summary)
        .mark_bar()
        .encode(x=alt.X("customers:Q"), y=alt.Y("rfm_segment:N", sort="-x", title=None)),
        first,
    )
    with second:
        table(summary)
    distributions()
    clusters()
    transitions()


def distributions() -> None:
    st.subheader("R, F and M scores (1 = lowest, 5 = best)")
    scores = queries.score_distribution()
    chart(
        alt.Chart(scores)
        .mark_bar()
        .encode(x=alt.X("score:O"), y=alt.Y("customers:Q"), column=alt.Column("measure:N", title=None)),
        width=None,
    )


def clusters() -> None:
    st.subheader("K-Means clusters")
    summary = queries.cluster_summary()
    sample = queries.cluster_sample()
    sample["monetary"] = sample["monetary"].astype(float)
    left, right = st.columns(2)
    with left:
        table(summary)
    chart(
        alt.Chart(sample)
        .mark_circle(size=18, opacity=0.6)
        .encode(
            x=alt.X("frequency:Q", scale=alt.Scale(type="log"), title="Baskets"),
            y=alt.Y("monetary:Q", scale=alt.Scale(type="symlog"), title="Net value"),
            color=alt.Color("cluster_label:N", title="Cluster"),
            tooltip=["customer_id:N", "recency_hours:Q", "frequency:Q", "monetary:Q", "cluster_label:N"],
        ),
        right,
    )


def transitions() -> None:
    st.subheader("Segment transitions (a week earlier → latest run)")
    moves = queries.segment_transitions()
    if moves.empty:
        st.info(
            "No segmentation run a week older than the latest one yet: transitions compare runs 7 days "
            "apart, so they appear once the daily runs span a week."
        )
        return
    chart(
        alt.Chart(moves)
        .mark_rect()
        .encode(
            x=alt.X("to_segment:N", title="Latest run"),
            y=alt.Y("from_segment:N", title="A week earlier"),
            color=alt.Color("customers:Q"),
            tooltip=["from_segment:N", "to_segment:N", "customers:Q"],
        )
    )
    moved = moves[moves["from_segment"] != moves["to_segment"]]["customers"].sum()
    st.metric("Customers who changed segment", count(moved))


st.title("Customers")
segments()
