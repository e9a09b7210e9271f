"""A database outage or a missing table shows a banner naming the problem and the fix on every page,
never an empty chart; an empty database says what to run to get data."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from dashboard.components import HOW_TO_GET_DATA
from dashboard.queries import _live, _slow
from retail.dbt import run_dbt
from retail.settings import Settings
from stack import postgres
from tests.dashboard.conftest import open_page, page_paths
from tests.scratch import free_port

pytestmark = pytest.mark.integration

BARE_DATABASE = "retail_dash_bare"
TIME_SCOPED = ["app_pages/overview.py", "app_pages/refunds.py", "app_pages/sales.py", "app_pages/stores.py"]


@pytest.fixture(scope="module")
def bare(platform: Settings) -> Settings:
    """A migrated database in which dbt has not built the marts yet."""
    settings = platform.model_copy(update={"pg_database": BARE_DATABASE})
    postgres.prepare(settings)
    return settings


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Cached results of another database must not hide this one's state."""
    _live.clear()
    _slow.clear()
    yield


def errors(page: str) -> list[str]:
    return [error.value for error in open_page(page).error]


@pytest.mark.parametrize("page", page_paths())
def test_database_down_shows_a_banner_naming_server_and_fix(
    platform: Settings, point_dashboard: Callable[[Settings], None], page: str
) -> None:
    port = free_port()
    point_dashboard(platform.model_copy(update={"pg_port": port}))
    banners = errors(page)
    assert banners
    assert all(f"Database unavailable at 127.0.0.1:{port}" in banner for banner in banners), banners
    assert all("retail up" in banner for banner in banners)


def test_missing_marts_name_the_table_and_dbt_build(
    bare: Settings, point_dashboard: Callable[[Settings], None]
) -> None:
    point_dashboard(bare)
    for page in TIME_SCOPED:
        banners = errors(page)
        assert len(banners) == 1, (page, banners)
        assert 'relation "marts.fct_sales" does not exist' in banners[0]
        assert "retail dbt build" in banners[0]
    health = errors("app_pages/pipeline_health.py")
    assert any("marts." in banner and "retail dbt build" in banner for banner in health), health


def test_empty_database_says_what_to_run(bare: Settings, point_dashboard: Callable[[Settings], None]) -> None:
    result = run_dbt(
        bare, ["build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]
    )
    assert result.success, result.exception
    point_dashboard(bare)
    for page in TIME_SCOPED:
        at = open_page(page)
        assert not at.error, [error.value for error in at.error]
        assert [info.value for info in at.info] == [HOW_TO_GET_DATA]
    for page, advice in (
        ("app_pages/customers.py", "retail ml run"),
        ("app_pages/recommendations.py", "retail ml run"),
    ):
        at = open_page(page)
        assert not at.error, [error.value for error in at.error]
        assert any(advice in info.value for info in at.info), page
    health = open_page("app_pages/pipeline_health.py")
    assert not health.error, [error.value for error in health.error]
