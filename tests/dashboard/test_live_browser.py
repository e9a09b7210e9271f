"""Live in a real browser: `retail up` with the streaming job and the dashboard, one basket built into the
marts, the Overview open in chromium; a basket produced to Kafka then shows in the tiles by itself, with no
reload, seconds after the stream lands it (through the live relations, before any dbt build)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from kafka import KafkaProducer
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from retail.contracts import LineItem, TransactionEvent
from retail.dbt import run_dbt
from retail.settings import Settings
from stack import stack
from tests.conftest import isolated_settings
from tests.dashboard.conftest import artifacts_dir
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Postgres, Kafka, the supervised streaming job and the dashboard (tiles refreshed every 2 s)."""
    settings = isolated_settings(
        tmp_path_factory.mktemp("live") / ".retail",
        stream_enabled=True,
        dashboard_enabled=True,
        dashboard_refresh_s=2.0,
        health_timeout_s=300.0,  # the streaming job's JVM starts slowly on a busy machine
    )
    try:
        settings = stack.up(settings, report=lambda line: None)  # with the generated secrets
        yield settings
    finally:
        stack.down(settings, report=lambda line: None)


def produce_basket(settings: Settings, quantity: int) -> Decimal:
    """One basket sold now, through Kafka; returns what the customer paid."""
    with psycopg.connect(settings.writer_dsn) as conn:
        product_id, price = conn.execute("select product_id, base_price from raw.products limit 1").fetchone()
        (store_id,) = conn.execute("select store_id from raw.stores limit 1").fetchone()
    event = TransactionEvent(
        event_id=f"00000000-0000-4000-8000-{random.getrandbits(48):012x}",
        transaction_id=f"LIVE-{random.getrandbits(32):08x}",
        event_ts=datetime.now(UTC),
        store_id=store_id,
        channel="store",
        payment_method="card",
        items=[LineItem(product_id=product_id, quantity=quantity, unit_price=price)],
    )
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    producer.send(settings.transactions_topic, key=event.key, value=event.model_dump_json().encode())
    producer.flush()
    producer.close()
    return price * quantity


def landed(settings: Settings) -> int:
    with psycopg.connect(settings.writer_dsn) as conn:
        return conn.execute("select count(*) from raw.transactions").fetchone()[0]


def tiles(driver: webdriver.Chrome) -> dict[str, str]:
    """The Overview's KPI tiles: label -> shown value."""
    result = {}
    for metric in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]'):
        label = metric.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]')
        value = metric.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricValue"]')
        if label and value:
            result[label[0].text.strip()] = value[0].text.strip()
    return result


def test_a_produced_basket_shows_in_the_open_overview(
    live_stack: Settings, browser: webdriver.Chrome
) -> None:
    first = produce_basket(live_stack, quantity=1)
    wait_for(lambda: landed(live_stack) == 1, 180, "the first basket landed")
    assert run_dbt(live_stack, ["build"]).success
    browser.get(live_stack.dashboard_url)
    try:
        WebDriverWait(browser, 90, poll_frequency=0.5).until(lambda d: tiles(d).get("Transactions") == "1")
    except TimeoutException:
        pytest.fail(f"the Overview did not show the built basket: {tiles(browser)}")
    assert tiles(browser)["Revenue"] == f"${first:,.2f}"
    page = browser.execute_script("return performance.timeOrigin")

    second = produce_basket(live_stack, quantity=2)
    try:
        WebDriverWait(browser, 60, poll_frequency=0.5).until(lambda d: tiles(d).get("Transactions") == "2")
    except TimeoutException:
        pytest.fail(f"the produced basket did not show without a reload: {tiles(browser)}")
    assert tiles(browser)["Revenue"] == f"${first + second:,.2f}"
    assert browser.execute_script("return performance.timeOrigin") == page  # same page load: no reload
    assert "Provisional: 1 basket (" in browser.find_element(By.TAG_NAME, "body").text
    screenshot: Path = artifacts_dir() / "overview_live.png"
    assert browser.save_screenshot(str(screenshot)), screenshot
