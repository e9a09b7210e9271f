"""Fixtures of the dashboard tests: a database of their own (`retail_dash_it`) with a week of simulated
sales, marts and ML runs (dataset.py), and Streamlit's AppTest pointed at it through RETAIL_* variables,
as `retail up` points the real dashboard.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService
from streamlit.testing.v1 import AppTest

from retail.settings import PROJECT_ROOT, Settings, get_settings
from tests.dashboard.dataset import Dataset, build

DATABASE = "retail_dash_it"
APP = PROJECT_ROOT / "dashboard" / "streamlit_app.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def dashboard_environment(settings: Settings) -> dict[str, str]:
    """The RETAIL_* variables that make the dashboard read the settings' database (passwords come from
    the state folder's secrets file, as for `retail up`)."""
    return {
        "RETAIL_STATE_DIR": str(settings.state_dir),
        "RETAIL_HOST": settings.host,
        "RETAIL_PG_PORT": str(settings.pg_port),
        "RETAIL_PG_DATABASE": settings.pg_database,
        "RETAIL_KAFKA_PORT": str(settings.kafka_port),
    }


@pytest.fixture(scope="package")
def dataset(platform: Settings) -> Dataset:
    return build(platform.model_copy(update={"pg_database": DATABASE}))


@pytest.fixture(scope="package")
def raw(dataset: Dataset) -> Iterator[psycopg.Connection]:
    """The writer login: the expected figures are computed from the raw facts the analyst cannot read."""
    with psycopg.connect(dataset.settings.writer_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture
def point_dashboard(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Settings], None]]:
    def point(settings: Settings) -> None:
        for name, value in dashboard_environment(settings).items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield point
    get_settings.cache_clear()


@pytest.fixture
def app(dataset: Dataset, point_dashboard: Callable[[Settings], None]) -> Callable[[str | None], AppTest]:
    """Runs the dashboard in-process on one page (path relative to dashboard/) against the dataset."""
    point_dashboard(dataset.settings)
    return lambda page=None: open_page(page)


def open_page(page: str | None, prepare: Callable[[AppTest], None] | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, [item.value for item in at.exception]
    return at


def page_paths() -> list[str]:
    return sorted(f"app_pages/{path.name}" for path in (APP.parent / "app_pages").glob("[!_]*.py"))


def artifacts_dir() -> Path:
    folder = PROJECT_ROOT / "test-artifacts" / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.fail(
            f"no {CHROMIUM} or {CHROMEDRIVER}: install Debian's chromium and chromium-driver with "
            "`bash scripts/install-system-deps.sh` (a downloaded browser does not work offline)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in (
        "--headless",
        "--no-sandbox",  # runs as root in CI containers
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1440,2200",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=DriverService(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
