"""Refunds: by reason, category, product and store, and the refund rate over time (refunds counted on
the day they were made, against that period's revenue, as in marts.agg_kpis_daily)."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import queries
from dashboard.components import (
    bucket_for,
    chart,
    count,
    money,
    panel,
    percent,
    scoped_page,
    time_axis,
    wall_clock,
)
from dashboard.time_scope import Scope


def totals_by(detail: pd.DataFrame, column: str) -> pd.DataFrame:
    grouped = detail.groupby(column, as_index=False)[["refunds", "amount"]].sum()
    return grouped.sort_values("amount", ascending=False)


def bar(frame: pd.DataFrame, column: str, title: str) -> alt.Chart:
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("amount:Q", title="Refunded"),
            y=alt.Y(f"{column}:N", sort="-x", title=None),
            tooltip=[f"{column}:N", "refunds:Q", "amount:Q"],
        )
        .properties(title=title)
    )


@panel
def breakdown(scope: Scope) -> None:
    detail = queries.refunds_detail(scope)
    detail["amount"] = detail["amount"].astype(float)
    revenue = queries.kpis(scope)["revenue"]
    total = detail["amount"].sum()
    left, middle, right = st.columns(3)
    left.metric("Refunded", money(total))
    middle.metric("Refunds", count(detail["refunds"].sum()))
    right.metric("Refund rate", percent(total / revenue if revenue else 0.0))
    if detail.empty:
        st.info("No refunds in this scope.")
        return
    first, second = st.columns(2)
    chart(bar(totals_by(detail, "reason"), "reason", "By reason"), first)
    chart(bar(totals_by(detail, "category"), "category", "By category"), second)
    third, fourth = st.columns(2)
    chart(bar(totals_by(detail, "product_name").head(15), "product_name", "Top products"), third)
    chart(bar(totals_by(detail, "store_name").head(15), "store_name", "Top stores"), fourth)


@panel
def rate_over_time(scope: Scope) -> None:
    bucket = bucket_for(scope)
    sales = queries.sales_over_time(scope, bucket)[["period", "revenue"]]
    refunds = queries.refunds_over_time(scope, bucket)
    sales["period"] = pd.to_datetime(sales["period"], utc=True)
    refunds["period"] = pd.to_datetime(refunds["period"], utc=True)
    series = sales.merge(refunds, on="period", how="outer").fillna(0)
    series["refund_rate"] = [
        float(refund) / float(revenue) if float(revenue) else None
        for refund, revenue in zip(series["refunds"], series["revenue"], strict=True)
    ]
    # Hours in the display time zone; days are UTC days (the scope's grain), drawn as their dates.
    series["period"] = (
        wall_clock(series["period"]) if bucket == "hour" else series["period"].dt.tz_localize(None)
    )
    st.subheader(f"Refund rate per {bucket}")
    chart(
        alt.Chart(series)
        .mark_line(point=True)
        .encode(
            x=time_axis("period"),
            y=alt.Y("refund_rate:Q", title="Refund rate", axis=alt.Axis(format="%")),
        )
    )


chosen = scoped_page("Refunds")
breakdown(chosen)
rate_over_time(chosen)
