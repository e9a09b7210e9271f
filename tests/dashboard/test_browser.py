"""A real browser on a running dashboard: Debian's headless chromium (through chromedriver) opens every
page of `streamlit run` started exactly as `retail up` starts it, waits until the page has rendered,
checks its key text and saves a screenshot per page in test-artifacts/dashboard/.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from dashboard import service
from retail.settings import Settings
from retail.stack.airflow import retail_environment
from retail.stack.scratch import free_port
from tests.dashboard.conftest import artifacts_dir
from tests.dashboard.dataset import Dataset

pytestmark = pytest.mark.integration

# URL path (st.navigation derives it from the page file) -> text the rendered page must show.
PAGES = {
    "": ["Overview", "Net revenue", "Average basket value", "Active customers"],
    "sales": ["Sales", "Top products", "Revenue per minute (live)", "provisional"],
    "refunds": ["Refunds", "Refund rate", "By reason"],
    "stores": ["Stores", "By region", "Store locations", "By store"],
    "customers": ["Customers", "Segments", "K-Means clusters", "Segment transitions"],
    "recommendations": ["Recommendations", "Top rules", "Bought X → also buy"],
    "pipeline_health": ["Pipeline health", "Streaming queries", "Consumer lag", "Freshness", "Last DAG runs"],
}
BANNERS = ("Database unavailable", "Missing in the database", "Traceback")


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
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                service.health_check(settings)
                break
            except OSError as error:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"dashboard did not start ({error}): {log.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.5)
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
    # Charts draw after the script ends; give the canvas a moment before the screenshot.
    time.sleep(1.5)
    body = browser.find_element(By.TAG_NAME, "body").text
    assert not [banner for banner in BANNERS if banner in body], body[:1500]
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    screenshot = artifacts_dir() / f"{path or 'overview'}.png"
    assert browser.save_screenshot(str(screenshot)), screenshot
