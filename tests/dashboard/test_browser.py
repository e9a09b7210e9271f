"""A real browser on a running dashboard: Debian's headless chromium (through chromedriver) opens every
page of `streamlit run` started exactly as `retail up` starts it, waits until the page has rendered,
checks its key text, the Overview's trend chart and the formatted tables, and refreshes the README's
screenshots in docs/screenshots/ (one per page).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from retail.settings import PROJECT_ROOT, Settings
from stack import dashboard_service as service
from stack.airflow import retail_environment
from tests.dashboard.dataset import Dataset
from tests.scratch import free_port
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

# URL path (st.navigation derives it from the page file) -> text the rendered page must show.
PAGES = {
    "": ["Overview", "Net revenue", "Average basket value", "Active customers", "Revenue and refunds per"],
    "sales": ["Sales", "Top products", "Revenue per minute (live)", "provisional"],
    "refunds": ["Refunds", "Refund rate", "By reason"],
    "stores": ["Stores", "By region", "Store locations", "By store"],
    "customers": ["Customers", "Segments", "K-Means clusters", "Segment transitions"],
    "recommendations": ["Recommendations", "Top rules", "Bought X → also buy"],
    "pipeline_health": ["Pipeline health", "Streaming queries", "Consumer lag", "Freshness", "Last DAG runs"],
}
BANNERS = ("Database unavailable", "Missing in the database", "Traceback")
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"
CENTS = re.compile(r"^-?\d+(\.\d{1,2})?$")


@pytest.fixture(scope="module")
def dashboard_url(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`streamlit run` with the service's command and environment, on a free port, stopped at the end."""
    settings: Settings = dataset.settings.model_copy(update={"dashboard_port": free_port()})
    log = tmp_path_factory.mktemp("dashboard") / "streamlit.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            service.command(settings),
            env={**os.environ, **retail_environment(settings)},
            cwd=str(service.APP.parent.parent),
            stdout=output,
            stderr=subprocess.STDOUT,
        )

    def healthy() -> bool:
        try:
            service.health_check(settings)
        except OSError:
            return False
        return True

    try:
        wait_for(healthy, timeout_s=120, what="the dashboard's health check", job=process, log=log)
        yield settings.dashboard_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rendered(driver: webdriver.Chrome, texts: list[str]) -> bool:
    """Every key text is on the page and the script has finished (no running indicator, no skeleton)."""
    body = driver.find_element(By.TAG_NAME, "body").text
    running = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
    skeletons = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSkeleton"]')
    return all(text in body for text in texts) and not running and not skeletons


def charts_drawn(driver: webdriver.Chrome) -> bool:
    """Every Vega chart on the page has its canvas (or svg) with a size."""
    for chart in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"]'):
        marks = chart.find_elements(By.CSS_SELECTOR, "canvas, svg.marks")
        if not marks or not marks[0].size["width"] or not marks[0].size["height"]:
            return False
    return True


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_renders_in_chromium(dashboard_url: str, browser: webdriver.Chrome, path: str) -> None:
    browser.get(f"{dashboard_url}/{path}")
    texts = PAGES[path]
    try:
        WebDriverWait(browser, 90, poll_frequency=0.5).until(lambda driver: rendered(driver, texts))
    except TimeoutException:
        body = browser.find_element(By.TAG_NAME, "body").text
        missing = [text for text in texts if text not in body]
        pytest.fail(f"/{path} did not render {missing}; page text: {body[:1500]}")
    # Charts draw after the script ends: wait for each one's canvas before checking and taking the screenshot.
    WebDriverWait(browser, 60, poll_frequency=0.5).until(charts_drawn)
    body = browser.find_element(By.TAG_NAME, "body").text
    assert not [banner for banner in BANNERS if banner in body], body[:1500]
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    if path == "":
        trend_chart_is_drawn(browser)
    if path == "stores":
        store_table_is_formatted(browser)
    screenshot = SCREENSHOTS / f"{path or 'overview'}.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(screenshot)), screenshot
    assert Path(screenshot).stat().st_size > 10_000  # a rendered page, not a blank one


def trend_chart_is_drawn(browser: webdriver.Chrome) -> None:
    """The revenue and refunds trend: a Vega chart under its heading, drawn (a canvas or svg with a size)."""
    heading = browser.find_element(
        By.XPATH, "//h3[starts-with(normalize-space(), 'Revenue and refunds per')]"
    )
    chart = heading.find_element(By.XPATH, "following::*[@data-testid='stVegaLiteChart'][1]")
    drawn = chart.find_elements(By.CSS_SELECTOR, "canvas, svg.marks")
    assert drawn and drawn[0].size["width"] > 200 and drawn[0].size["height"] > 100, drawn


def store_table_is_formatted(browser: webdriver.Chrome) -> None:
    """The 'By store' table has human column labels, and its money columns hold cents. The grid draws on
    a canvas; its accessibility table holds the labels and the cells' values (not their display
    format, which test_pages checks in the column configuration and the screenshot shows)."""
    grid = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]')[-1]
    headers = {h.get_attribute("textContent"): h for h in grid.find_elements(By.CSS_SELECTOR, "th")}
    assert {"Store", "Units sold", "Revenue", "Refunds", "Net revenue"} <= set(headers), list(headers)
    assert not [label for label in headers if "_" in label], list(headers)
    column = headers["Revenue"].get_attribute("aria-colindex")
    cells = grid.find_elements(By.CSS_SELECTOR, f'td[aria-colindex="{column}"]')
    shown = [cell.get_attribute("textContent") for cell in cells]
    assert shown and all(CENTS.match(text) for text in shown), shown
