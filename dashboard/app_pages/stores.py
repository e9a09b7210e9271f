"""Stores: revenue, refunds and net revenue by region and store, and a map of the stores sized by
revenue over the time scope."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import queries
from dashboard.components import chart, money, panel, scoped_page
from dashboard.tables import table
from dashboard.time_scope import Scope


def by_region(stores: pd.DataFrame) -> pd.DataFrame:
    regions = stores.groupby("region", as_index=False)[["units", "revenue", "refunds", "net_revenue"]].sum()
    regions["stores"] = stores.groupby("region")["store_id"].count().reindex(regions["region"]).to_numpy()
    return regions.sort_values("revenue", ascending=False)


@panel
def performance(scope: Scope) -> None:
    stores = queries.store_performance(scope)
    for column in ("revenue", "refunds", "latitude", "longitude"):
        stores[column] = stores[column].astype(float)
    stores["net_revenue"] = stores["revenue"] - stores["refunds"]
    regions = by_region(stores)
    st.subheader("By region")
    columns = st.columns(max(len(regions), 1))
    for column, region in zip(columns, regions.itertuples(), strict=False):
        column.metric(f"{region.region} net revenue", money(region.net_revenue))
    chart(
        alt.Chart(regions)
        .mark_bar()
        .encode(x=alt.X("net_revenue:Q", title="Net revenue"), y=alt.Y("region:N", sort="-x", title=None))
    )
    st.subheader("Store locations")
    biggest = max(stores["revenue"].max(), 1.0)
    st.map(
        stores.assign(size=2000 + 18000 * stores["revenue"] / biggest),
        latitude="latitude",
        longitude="longitude",
        size="size",
    )
    st.subheader("By store")
    table(
        stores, ["store_name", "city", "region", "store_format", "units", "revenue", "refunds", "net_revenue"]
    )


chosen = scoped_page("Stores")
performance(chosen)
