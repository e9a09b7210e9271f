"""Every page renders without an exception, and every KPI it shows equals the same figure computed from
the raw facts (tests/dashboard/expected.py), for every time scope."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import psycopg
import pyarrow as pa
import pytest
from altair.utils.schemapi import validate_jsonschema
from altair.vegalite.v6.schema.core import load_schema
from streamlit.testing.v1 import AppTest

from dashboard.components import count, delta, money, percent
from dashboard.time_scope import CUSTOM, RELATIVE_SCOPES
from tests.dashboard import expected
from tests.dashboard.conftest import page_paths
from tests.dashboard.dataset import Dataset

pytestmark = pytest.mark.integration

SCOPES = [*RELATIVE_SCOPES, CUSTOM]
VEGA_LITE_SCHEMA = load_schema()
_BOUNDS = re.compile(r"Scope: (\S+ \S+) → (\S+ \S+) UTC; deltas against (\S+ \S+) → (\S+ \S+) UTC")


def metrics(at: AppTest) -> dict[str, tuple[str, str | None]]:
    return {metric.label: (metric.value, metric.delta or None) for metric in at.metric}


def scope_bounds(at: AppTest) -> tuple[datetime, datetime, datetime, datetime]:
    """The exact window the page used, from its caption (relative scopes end at the render's second)."""
    for caption in at.caption:
        if match := _BOUNDS.search(caption.value):
            moments = [datetime.fromisoformat(text).replace(tzinfo=UTC) for text in match.groups()]
            return moments[0], moments[1], moments[2], moments[3]
    raise AssertionError(f"no scope caption in {[caption.value for caption in at.caption]}")


def chart_data(at: AppTest, index: int = 0) -> pd.DataFrame:
    """The rows an Altair chart of the page draws (Streamlit ships them as Arrow datasets)."""
    chart = at.get("vega_lite_chart")[index].proto
    payloads = [dataset.data.data for dataset in chart.datasets] or [chart.data.data]
    assert len(payloads) == 1, len(payloads)
    return pa.ipc.open_stream(payloads[0]).read_all().to_pandas()


def column_formats(at: AppTest, index: int) -> dict[str, tuple[str, str | None]]:
    """Column name -> (label, number or time format) of a page's st.dataframe (index column aside)."""
    config = json.loads(at.dataframe[index].proto.columns)
    return {
        name.removeprefix("col:"): (column.get("label"), column.get("type_config", {}).get("format"))
        for name, column in config.items()
        if name != "_index"
    }


def with_scope(at: AppTest, scope: str) -> AppTest:
    at.sidebar.radio(key="time_scope").set_value(scope).run()
    assert not at.exception, [item.value for item in at.exception]
    return at


@pytest.mark.parametrize("page", page_paths())
def test_every_page_renders_without_exception_or_error(app: Callable[[str], AppTest], page: str) -> None:
    at = app(page)
    assert not at.error, [error.value for error in at.error]
    assert at.title[0].value
    # The dashboard sends its chart specs unvalidated (components.chart); each must be valid Vega-Lite.
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        validate_jsonschema({**spec, "data": {"name": "rows"}}, VEGA_LITE_SCHEMA)


@pytest.mark.parametrize("scope", SCOPES)
def test_overview_kpis_equal_the_raw_facts(
    app: Callable[[str], AppTest], raw: psycopg.Connection, scope: str
) -> None:
    at = with_scope(app("app_pages/overview.py"), scope)
    start, end, previous_start, previous_end = scope_bounds(at)
    assert (previous_end, end - start) == (start, previous_end - previous_start)
    current = expected.overview(raw, start, end)
    previous = expected.overview(raw, previous_start, previous_end)
    formats = {
        "Revenue": ("revenue", money),
        "Net revenue": ("net_revenue", money),
        "Refunds": ("refunds", money),
        "Refund rate": ("refund_rate", percent),
        "Transactions": ("transactions", count),
        "Average basket value": ("average_basket_value", money),
        "Active customers": ("active_customers", count),
    }
    shown = metrics(at)
    assert set(shown) == set(formats)
    for label, (key, formatter) in formats.items():
        assert shown[label] == (formatter(current[key]), delta(current[key], previous[key], formatter)), label


@pytest.mark.parametrize(("scope", "step"), [("Last 24 hours", "hour"), ("Last 7 days", "day")])
def test_overview_trend_adds_up_to_the_tiles(
    app: Callable[[str], AppTest], raw: psycopg.Connection, scope: str, step: str
) -> None:
    """Revenue and refunds per hour (scopes up to 2 days) or day, from the live views: the periods
    add up to the scope's revenue and refunds computed from the raw facts, to the cent."""
    at = with_scope(app("app_pages/overview.py"), scope)
    assert f"Revenue and refunds per {step}" in [header.value for header in at.subheader]
    start, end, _, _ = scope_bounds(at)
    current = expected.overview(raw, start, end)
    points = chart_data(at)
    totals = points.groupby("figure")["amount"].sum()
    assert round(totals["Revenue"], 2) == round(current["revenue"], 2)
    assert round(totals["Refunds"], 2) == round(current["refunds"], 2)
    # Every hour (day) of the scope is a point, quiet ones at 0.
    periods = pd.Series(sorted(pd.to_datetime(points["period"].unique())))
    unit = "h" if step == "hour" else "D"
    first, last = pd.Timestamp(start).floor(unit), pd.Timestamp(end - timedelta(microseconds=1)).floor(unit)
    # Drawn as wall-clock times of the display zone (UTC here), without an offset.
    assert list(periods) == list(pd.date_range(first, last, freq=unit).tz_localize(None))


def test_tables_have_labels_and_formatted_money(app: Callable[[str], AppTest]) -> None:
    stores = with_scope(app("app_pages/stores.py"), "Last 7 days")
    assert column_formats(stores, 0) == {
        "store_name": ("Store", None),
        "city": ("City", None),
        "region": ("Region", None),
        "store_format": ("Format", None),
        "units": ("Units sold", "%,d"),
        "revenue": ("Revenue", "$%,.2f"),
        "refunds": ("Refunds", "$%,.2f"),
        "net_revenue": ("Net revenue", "$%,.2f"),
    }
    rules = column_formats(app("app_pages/recommendations.py"), 0)
    assert rules["support"] == ("Support", "percent")
    assert rules["confidence"] == ("Confidence", "percent")


def test_times_show_in_the_display_time_zone_while_scopes_stay_utc(
    app: Callable[[str], AppTest], raw: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retail.settings import get_settings

    monkeypatch.setenv("RETAIL_DISPLAY_TZ", "America/New_York")
    get_settings.cache_clear()
    at = with_scope(app("app_pages/overview.py"), "Last 24 hours")
    caption = next(c.value for c in at.caption if c.value.startswith("Scope:"))
    found = re.search(r"Scope: (\S+ \S+) → (\S+ \S+) America/New_York", caption)
    assert found, caption
    zone = ZoneInfo("America/New_York")
    start, end = (datetime.fromisoformat(text).replace(tzinfo=zone) for text in found.groups())
    assert end - start == timedelta(days=1)
    assert abs(end - datetime.now(UTC)) < timedelta(minutes=10)  # the local time of now, not UTC's digits
    shown = metrics(at)
    assert shown["Revenue"][0] == money(expected.overview(raw, start, end)["revenue"])
    health = app("app_pages/pipeline_health.py")
    freshness = next(i for i, frame in enumerate(health.dataframe) if "table_name" in frame.value.columns)
    assert column_formats(health, freshness)["latest_at"] == (
        "Latest (America/New_York)",
        "YYYY-MM-DD HH:mm:ss",
    )


def test_overview_scopes_of_a_week_hold_sales(app: Callable[[str], AppTest], raw: psycopg.Connection) -> None:
    """Guards the KPI test against comparing zeros: the dataset fills the week up to now."""
    at = with_scope(app("app_pages/overview.py"), "Last 7 days")
    start, end, _, _ = scope_bounds(at)
    assert expected.overview(raw, start, end)["transactions"] > 1000
    assert expected.overview(raw, start, end)["refunds"] > 0


@pytest.mark.parametrize("scope", ["Last 24 hours", "Last 7 days", CUSTOM])
def test_sales_totals_equal_the_raw_facts(
    app: Callable[[str], AppTest], raw: psycopg.Connection, scope: str
) -> None:
    at = with_scope(app("app_pages/sales.py"), scope)
    start, end, _, _ = scope_bounds(at)
    revenue, units, products = expected.sales(raw, start, end)
    shown = metrics(at)
    assert shown["Revenue"][0] == money(float(revenue))
    assert shown["Units sold"][0] == count(units)
    assert shown["Products sold"][0] == count(products)


@pytest.mark.parametrize("scope", ["Last 7 days", CUSTOM])
def test_sales_minute_series_marks_provisional_windows(
    app: Callable[[str], AppTest], raw: psycopg.Connection, scope: str
) -> None:
    at = with_scope(app("app_pages/sales.py"), scope)
    note = next(caption.value for caption in at.caption if "provisional" in caption.value)
    provisional, total = map(int, re.findall(r"(\d+) of (\d+) minute windows", note)[0])
    start, end = (
        datetime.fromisoformat(text).replace(tzinfo=UTC)
        for text in re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", note)
    )
    assert (provisional, total) == expected.minute_windows(raw, start, end)
    # The dataset's batch layer closed every hour but the last two with sales: both kinds are on show.
    assert 0 < provisional < total


@pytest.mark.parametrize("scope", ["Last 24 hours", "Last 7 days", CUSTOM])
def test_refund_figures_equal_the_raw_facts(
    app: Callable[[str], AppTest], raw: psycopg.Connection, scope: str
) -> None:
    at = with_scope(app("app_pages/refunds.py"), scope)
    start, end, _, _ = scope_bounds(at)
    amount, number, revenue = expected.refunds(raw, start, end)
    shown = metrics(at)
    assert shown["Refunded"][0] == money(float(amount))
    assert shown["Refunds"][0] == count(number)
    assert shown["Refund rate"][0] == percent(float(amount) / float(revenue) if revenue else 0.0)
    assert number > 0 or scope == "Last 24 hours"


@pytest.mark.parametrize("scope", ["Last 24 hours", "Last 7 days"])
def test_region_net_revenue_equals_the_raw_facts(
    app: Callable[[str], AppTest], raw: psycopg.Connection, scope: str
) -> None:
    at = with_scope(app("app_pages/stores.py"), scope)
    start, end, _, _ = scope_bounds(at)
    regions = expected.net_revenue_by_region(raw, start, end)
    shown = metrics(at)
    assert {label.removesuffix(" net revenue") for label in shown} == set(regions)
    for region, amount in regions.items():
        assert shown[f"{region} net revenue"][0] == money(float(amount)), region
    assert at.get("deck_gl_json_chart")


def test_customer_segments_cover_every_loyalty_customer(
    app: Callable[[str], AppTest], raw: psycopg.Connection
) -> None:
    at = app("app_pages/customers.py")
    customers, net_value = expected.loyalty_customers(raw)
    shown = metrics(at)
    assert shown["Customers segmented"][0] == count(customers)
    assert shown["Net value"][0] == money(float(net_value))
    # The dataset's two runs are minutes apart: transitions compare runs a week apart, so none yet.
    assert "Customers who changed segment" not in shown
    assert any("a week older than the latest one" in info.value for info in at.info)


def test_top_rule_support_equals_the_raw_baskets(
    app: Callable[[str], AppTest], raw: psycopg.Connection, dataset: Dataset
) -> None:
    at = app("app_pages/recommendations.py")
    rules = at.dataframe[0].value
    assert len(rules) > 0
    top = rules.iloc[0]
    names = [*top["bought"].split(", "), *top["also_buy"].split(", ")]
    products = [
        row[0] for row in raw.execute("select product_id from raw.products where name = any(%s)", [names])
    ]
    assert len(products) == len(names)
    baskets, total = expected.baskets_with(raw, products, dataset.settings.ml_max_basket_lines)
    assert top["baskets"] == baskets
    assert top["support"] == pytest.approx(baskets / total)


def test_also_bought_lookup_suggests_products(
    app: Callable[[str], AppTest], analyst_dataset: psycopg.Connection
) -> None:
    at = app("app_pages/recommendations.py")
    antecedent = analyst_dataset.execute(
        "select antecedents[1] from ml.product_associations_latest where cardinality(antecedents) = 1"
        " order by rule_rank limit 1"
    ).fetchone()[0]
    at.multiselect(key="basket").set_value([antecedent]).run()
    assert not at.exception
    suggestions = at.dataframe[-1].value
    wanted = analyst_dataset.execute(
        "select product_id from ml.also_bought(array[%s]) order by score desc, product_id", [antecedent]
    ).fetchall()
    assert list(suggestions["product_id"]) == [row[0] for row in wanted]


def test_pipeline_health_shows_the_ops_tables(app: Callable[[str], AppTest], raw: psycopg.Connection) -> None:
    at = app("app_pages/pipeline_health.py")
    assert not at.error, [error.value for error in at.error]
    shown = metrics(at)
    dead = raw.execute("select count(*) from ops.dead_letter where replayed_at is null").fetchone()[0]
    late = raw.execute("select sum(late_events) from ops.late_events").fetchone()[0]
    assert shown["Dead letters"][0] == count(dead)
    assert shown["Late events"][0] == count(late)
    frames = [frame.value for frame in at.dataframe]
    freshness = next(frame for frame in frames if "table_name" in frame.columns)
    latest = dict(zip(freshness["table_name"], freshness["latest_at"], strict=True))
    landed = raw.execute("select max(ingested_at) from raw.transaction_items").fetchone()[0]
    assert latest["raw.transaction_items"] == landed
    lag = next(frame for frame in frames if "lag" in frame.columns)
    assert len(lag) == 9  # 6 transactions + 3 refunds partitions
    runs = next(frame for frame in frames if "dag_id" in frame.columns)
    assert set(zip(runs["dag_id"], runs["state"], strict=True)) == {
        ("retail_dimensions", "success"),
        ("retail_ml", "failed"),
    }
    reconciliation = next(frame for frame in frames if "mismatching" in frame.columns)
    assert reconciliation["mismatching"].sum() > 0  # the basket the stream missed


@pytest.fixture
def analyst_dataset(dataset: Dataset) -> Iterator[psycopg.Connection]:
    with psycopg.connect(dataset.settings.analyst_dsn, autocommit=True) as conn:
        yield conn
