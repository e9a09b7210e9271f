"""Building blocks shared by the pages: number formats, KPI tiles with deltas, the time-scope selector,
and the error and empty-data banners.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Literal, ParamSpec

import altair as alt
import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dashboard.db import DashboardError
from dashboard.queries import LIVE_TTL_S, data_days
from dashboard.tables import display_zone
from dashboard.time_scope import CUSTOM, RELATIVE_SCOPES, Scope, shown_time

P = ParamSpec("P")

HOW_TO_GET_DATA = (
    "No sales in the marts yet. Load data and build the marts: `retail demo` (everything), or "
    "`retail produce backfill --days 7` then, once the speed layer has landed it, `retail dbt build`."
)


def money(value: float) -> str:
    return f"${value:,.2f}"


def count(value: float) -> str:
    return f"{int(value):,}"


def percent(value: float) -> str:
    return f"{value:.2%}"


def delta(current: float, previous: float, formatter: Callable[[float], str]) -> str | None:
    """The change against the previous period, in the figure's own unit (None when both are zero)."""
    if current == previous == 0:
        return None
    change = current - previous
    sign = "+" if change >= 0 else "-"
    if formatter is percent:
        return f"{sign}{abs(change) * 100:.2f} pp"
    return f"{sign}{formatter(abs(change))}"


def kpi(
    column: st.delta_generator.DeltaGenerator,
    label: str,
    current: float,
    previous: float,
    formatter: Callable[[float], str],
    higher_is_better: bool = True,
) -> None:
    column.metric(
        label,
        formatter(current),
        delta(current, previous, formatter),
        delta_color="normal" if higher_is_better else "inverse",
        help="Change against the previous period of the same length.",
    )


def panel(render: Callable[P, None]) -> Callable[P, None]:
    """Renders a section, or the banner of the query error that stopped it (never an empty chart)."""

    @functools.wraps(render)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            render(*args, **kwargs)
        except DashboardError as error:
            st.error(str(error), icon=":material/error:")

    return wrapper


def require_sales() -> tuple[date, date]:
    """The marts' first and last sale date; stops the page with what to run when there is none."""
    try:
        days = data_days().iloc[0]
    except DashboardError as error:
        st.error(str(error), icon=":material/error:")
        st.stop()
    if pd.isna(days.last_day):  # min/max over no rows
        st.info(HOW_TO_GET_DATA, icon=":material/info:")
        st.stop()
    return days.first_day, days.last_day


def current_time() -> datetime:
    """Now, floored to the live cache's lifetime: renders within those seconds share cached queries
    (a relative scope ending at each render's own second would never hit the cache)."""
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(seconds=now.second % LIVE_TTL_S)


def scope_selector(first_day: date, last_day: date, now: datetime | None = None) -> Scope:
    """The page's time scope (sidebar), remembered across pages; relative scopes end now."""
    choice = st.sidebar.radio(
        "Time scope", [*RELATIVE_SCOPES, CUSTOM], index=3, key="time_scope", help="Every figure obeys it."
    )
    if choice != CUSTOM:
        return Scope.last(RELATIVE_SCOPES[choice], now or current_time())
    picked = st.sidebar.date_input(
        "Days (UTC)",
        value=(max(first_day, last_day - timedelta(days=6)), last_day),
        key="time_scope_days",
    )
    first, last = (
        (picked[0], picked[-1]) if isinstance(picked, tuple | list) and picked else (last_day, last_day)
    )
    return Scope.days(first, last)


def scoped_page(title: str, caption: bool = True) -> Scope:
    """Title, the no-data guard and the time scope every time-scoped page starts with."""
    st.title(title)
    first_day, last_day = require_sales()
    scope = scope_selector(first_day, last_day)
    if caption:
        scope_caption(scope)
    return scope


def scope_is_relative() -> bool:
    """Relative scopes follow the clock: their live panels refresh, a custom scope's stay put."""
    return st.session_state.get("time_scope") != CUSTOM


def scope_caption(scope: Scope) -> None:
    zone = display_zone()
    st.caption(f"Scope: {scope.label(zone)}; deltas against {scope.previous().label(zone)}")


def local_time(moment: datetime) -> str:
    """A moment in the display time zone, with the zone's name (captions)."""
    zone = display_zone()
    return f"{shown_time(moment, zone)} {zone.key}"


def wall_clock(moments: pd.Series) -> pd.Series:
    """Times for a chart axis: wall-clock time in the display zone, without an offset. Drawn on a UTC
    scale (`time_axis`), they read the same in any browser; Vega-Lite would otherwise draw instants in
    the browser's own time zone."""
    return pd.to_datetime(moments, utc=True).dt.tz_convert(display_zone()).dt.tz_localize(None)


def time_axis(field: str, title: str | None = None) -> alt.X:
    """The x axis of a `wall_clock` column: labels as stored, whatever the browser's time zone."""
    return alt.X(f"{field}:T", title=title, scale=alt.Scale(type="utc"))


def time_tooltip(field: str, title: str) -> alt.Tooltip:
    return alt.Tooltip(f"utcyearmonthdatehoursminutes({field}):T", title=title)


def chart(
    figure: alt.Chart, where: DeltaGenerator | None = None, width: Literal["stretch"] | None = "stretch"
) -> None:
    """Draw an Altair chart at full width. Not through `st.altair_chart`: that validates each spec against
    Vega-Lite's JSON schema and converts its rows under one process-wide lock, so with 20 viewers their
    renders queued on it (40% of the server's time, profiled). The charts here are built from literals:
    the spec goes unvalidated, and the rows go as Arrow beside it, as before."""
    rows = figure.data
    bare = figure.copy(deep=False)
    bare.data = alt.Undefined
    spec = bare.to_dict(validate=False)
    for key in ("data", "datasets"):  # Altair's placeholder for the missing rows
        spec.pop(key, None)
    if spec.get("config") == alt.theme.get()().get("config"):
        spec.pop("config")  # the theme's fixed 300 px view, which Streamlit's own path drops too
    (where or st).vega_lite_chart(rows, spec, width=width)


def bucket_for(scope: Scope) -> str:
    """Hourly series up to two days, daily beyond."""
    return "hour" if scope.length <= timedelta(days=2) else "day"
