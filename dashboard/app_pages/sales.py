"""Sales: by product, category and time; the live per-minute series marks windows not final yet.

A minute window is final once the batch layer recomputed its hour (`is_final` in
marts.fct_product_metrics_minute); until then it comes from the stream and may still change.
"""

from __future__ import annotations

from datetime import timedelta

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import queries
from dashboard.components import (
    bucket_for,
    chart,
    count,
    current_time,
    local_time,
    money,
    panel,
    scope_is_relative,
    scoped_page,
    time_axis,
    time_tooltip,
    wall_clock,
)
from dashboard.db import settings
from dashboard.tables import table
from dashboard.time_scope import Scope


def by_category(products: pd.DataFrame) -> pd.DataFrame:
    frame = products.assign(category=products["category"].fillna("(unknown)"))
    grouped = frame.groupby("category", as_index=False)[["units", "revenue"]].sum()
    return grouped.sort_values("revenue", ascending=False)


@panel
def totals_and_products(scope: Scope) -> None:
    products = queries.sales_by_product(scope)
    products["revenue"] = products["revenue"].astype(float)
    left, middle, right = st.columns(3)
    left.metric("Revenue", money(products["revenue"].sum()))
    middle.metric("Units sold", count(products["units"].sum()))
    right.metric("Products sold", count((products["units"] > 0).sum()))
    chart_column, table_column = st.columns(2)
    with chart_column:
        st.subheader("By category")
        categories = by_category(products)
        chart(
            alt.Chart(categories)
            .mark_bar()
            .encode(x=alt.X("revenue:Q", title="Revenue"), y=alt.Y("category:N", sort="-x", title=None))
        )
    with table_column:
        st.subheader("Top products")
        table(products.head(15), ["product_name", "category", "units", "revenue"])


@panel
def over_time(scope: Scope) -> None:
    bucket = bucket_for(scope)
    series = queries.sales_over_time(scope, bucket)
    series["revenue"] = series["revenue"].astype(float)
    st.subheader(f"Revenue per {bucket}")
    # Days (UTC days, the scope's grain) as ordinal bands (wide bars); hours on a time axis, local time.
    if bucket == "hour":
        series["period"] = wall_clock(series["period"])
    period = alt.X("yearmonthdate(period):O", title="Day (UTC)") if bucket == "day" else time_axis("period")
    chart(alt.Chart(series).mark_bar().encode(x=period, y=alt.Y("revenue:Q", title="Revenue")))


# The live series shows the scope's last hours, up to now at most (a custom scope may end tomorrow).
MINUTE_SPAN = timedelta(hours=6)


@panel
def minute_windows(scope: Scope) -> None:
    end = min(scope.end, current_time())
    start = max(scope.start, end - MINUTE_SPAN)
    series = queries.minute_series(start, end)
    st.subheader("Revenue per minute (live)")
    if series.empty:
        st.info(
            "No minute windows in this scope: the speed layer has not landed any (is `retail stream` up?)."
        )
        return
    series["revenue"] = series["revenue"].astype(float)
    series["window_start"] = wall_clock(series["window_start"])
    series["window"] = series["is_final"].map({True: "final (batch)", False: "provisional (stream)"})
    chart(
        alt.Chart(series)
        .mark_bar()
        .encode(
            x=time_axis("window_start"),
            y=alt.Y("revenue:Q", title="Revenue"),
            color=alt.Color("window:N", title="Window", scale=alt.Scale(range=["#1f77b4", "#ff7f0e"])),
            opacity=alt.condition(alt.datum.is_final, alt.value(1.0), alt.value(0.55)),
            tooltip=[time_tooltip("window_start", "Minute"), "revenue:Q", "units:Q", "window:N"],
        )
    )
    provisional = int((~series["is_final"].astype(bool)).sum())
    st.caption(
        f"{provisional} of {len(series)} minute windows from {local_time(start)} to "
        f"{local_time(end)} are provisional (not final yet)."
    )


chosen = scoped_page("Sales")
totals_and_products(chosen)
over_time(chosen)
relative = scope_is_relative()


@st.fragment(run_every=timedelta(seconds=settings().dashboard_refresh_s) if relative else None)
def live_minutes() -> None:
    minute_windows(Scope.last(chosen.length, current_time()) if relative else chosen)


live_minutes()
