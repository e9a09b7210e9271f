"""Overview: the chain's KPIs over one time scope, each against the previous period of the same length,
and the revenue and refunds trend under them (per hour up to two days, per day beyond).

Relative scopes ("Last hour") follow the clock: the tiles refresh on their own every
RETAIL_DASHBOARD_REFRESH_S seconds without reloading the page, and count baskets seconds after the stream
lands them (the live relations); a caption says how much of the scope is provisional (not yet built).
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
    kpi,
    local_time,
    money,
    panel,
    percent,
    scope_caption,
    scope_is_relative,
    scoped_page,
    time_axis,
    time_tooltip,
    wall_clock,
)
from dashboard.db import settings
from dashboard.time_scope import Scope

TILES = [
    # (label, key, format, higher is better)
    ("Revenue", "revenue", money, True),
    ("Net revenue", "net_revenue", money, True),
    ("Refunds", "refunds", money, False),
    ("Refund rate", "refund_rate", percent, False),
    ("Transactions", "transactions", count, True),
    ("Average basket value", "average_basket_value", money, True),
    ("Active customers", "active_customers", count, True),
]


@panel
def kpi_tiles(scope: Scope) -> None:
    current, previous = queries.kpis(scope), queries.kpis(scope.previous())
    scope_caption(scope)
    for row in (TILES[:4], TILES[4:]):
        for column, (label, key, formatter, better) in zip(st.columns(4), row, strict=False):
            kpi(column, label, current[key], previous[key], formatter, better)
    pending = queries.provisional(scope)
    if pending["baskets"]:
        built = "never" if pending["built_at"] is None else f"at {local_time(pending['built_at'])}"
        st.caption(
            f"Provisional: {count(pending['baskets'])} basket{'' if pending['baskets'] == 1 else 's'} "
            f"({money(pending['revenue'])}) landed since "
            f"the marts were last built ({built}); they count already and become final at the next build."
        )


def trend_frame(sales: pd.DataFrame, refunds: pd.DataFrame, scope: Scope, bucket: str) -> pd.DataFrame:
    """One row per hour or UTC day of the scope, with revenue and refunds (0 in a period without any):
    a quiet night is a dip in the line, not a straight line over it."""
    sales = sales.assign(period=pd.to_datetime(sales["period"], utc=True))[["period", "revenue"]]
    refunds = refunds.assign(period=pd.to_datetime(refunds["period"], utc=True))[["period", "refunds"]]
    unit = "h" if bucket == "hour" else "D"
    last = pd.Timestamp(scope.end - timedelta(microseconds=1)).floor(unit)
    periods = pd.DataFrame({"period": pd.date_range(pd.Timestamp(scope.start).floor(unit), last, freq=unit)})
    series = periods.merge(sales, on="period", how="left").merge(refunds, on="period", how="left")
    return series.fillna(0).astype({"revenue": float, "refunds": float})


@panel
def trend(scope: Scope) -> None:
    bucket = bucket_for(scope)
    sales, refunds = queries.sales_over_time(scope, bucket), queries.refunds_over_time(scope, bucket)
    series = trend_frame(sales, refunds, scope, bucket)
    st.subheader(f"Revenue and refunds per {bucket}")
    # Days are UTC days (the scope's own grain); hours are drawn in the display time zone.
    days = series["period"].dt.strftime("%Y-%m-%d")  # as text: an ordinal axis would show epoch numbers
    shown = series.assign(period=wall_clock(series["period"]) if bucket == "hour" else days)
    long = shown.melt("period", ["revenue", "refunds"], var_name="figure", value_name="amount")
    long["figure"] = long["figure"].map({"revenue": "Revenue", "refunds": "Refunds"})
    axis = time_axis("period") if bucket == "hour" else alt.X("period:O", title="Day (UTC)")
    chart(
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=axis,
            y=alt.Y("amount:Q", title="Amount", axis=alt.Axis(format="$,.0f")),
            color=alt.Color(
                "figure:N",
                title=None,
                scale=alt.Scale(domain=["Revenue", "Refunds"], range=["#1f77b4", "#d62728"]),
                legend=alt.Legend(orient="top"),
            ),
            tooltip=[
                time_tooltip("period", "Hour") if bucket == "hour" else alt.Tooltip("period:O", title="Day"),
                alt.Tooltip("figure:N", title="Figure"),
                alt.Tooltip("amount:Q", title="Amount", format="$,.2f"),
            ],
        )
    )


chosen = scoped_page("Overview", caption=False)
relative = scope_is_relative()


@st.fragment(run_every=timedelta(seconds=settings().dashboard_refresh_s) if relative else None)
def live_tiles() -> None:
    # A relative scope moves with the clock at every refresh; a custom one stays put.
    scope = Scope.last(chosen.length, current_time()) if relative else chosen
    kpi_tiles(scope)
    trend(scope)


live_tiles()
