"""Overview: the chain's KPIs over one time scope, each against the previous period of the same length.

Relative scopes ("Last hour") follow the clock: the tiles refresh on their own every
RETAIL_DASHBOARD_REFRESH_S seconds without reloading the page, and count baskets seconds after the stream
lands them (the live relations); a caption says how much of the scope is provisional (not yet built).
"""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from dashboard import queries
from dashboard.components import (
    count,
    current_time,
    kpi,
    money,
    panel,
    percent,
    scope_caption,
    scope_is_relative,
    scoped_page,
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
        built = "never" if pending["built_at"] is None else f"at {pending['built_at']:%Y-%m-%d %H:%M} UTC"
        st.caption(
            f"Provisional: {count(pending['baskets'])} basket{'' if pending['baskets'] == 1 else 's'} "
            f"({money(pending['revenue'])}) landed since "
            f"the marts were last built ({built}); they count already and become final at the next build."
        )


chosen = scoped_page("Overview", caption=False)
relative = scope_is_relative()


@st.fragment(run_every=timedelta(seconds=settings().dashboard_refresh_s) if relative else None)
def live_tiles() -> None:
    # A relative scope moves with the clock at every refresh; a custom one stays put.
    scope = Scope.last(chosen.length, current_time()) if relative else chosen
    kpi_tiles(scope)


live_tiles()
