"""Fixtures for the DAG tests: a real Airflow metadata DB and a database of their own on the platform.

`airflow_env` prepares an `airflow_test` metadata database in the session's embedded PostgreSQL with the
same code `retail up` uses (`stack.airflow.prepare`: role, database, airflow.cfg, `airflow db
migrate`), exports Airflow's configuration and the platform's RETAIL_* settings into the environment, and
only then lets the tests import Airflow: Airflow reads its configuration once, at import.

The DAG tests load dimensions into a database of their own (`retail_dags`, migrated like the platform's),
so they can empty tables between runs without touching what other test folders rely on.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import psycopg
import pytest

from retail.settings import Settings, get_settings
from stack import airflow as airflow_stack
from stack import postgres

DAGS_DATABASE = "retail_dags"
AIRFLOW_TEST_DATABASE = "airflow_test"


# Package scope (tests/dags is a package for this): the RETAIL_* variables it exports, e.g. the database
# `retail_dags`, must not leak into the test folders collected after this one.
@pytest.fixture(scope="package")
def airflow_env(platform: Settings) -> Iterator[Settings]:
    """Settings whose database is `retail_dags`, with Airflow configured (environment) and migrated."""
    if "airflow" in sys.modules:
        pytest.fail("airflow was imported before tests/dags configured it; import it inside tests only")
    settings = platform.model_copy(
        update={"pg_database": DAGS_DATABASE, "airflow_db_name": AIRFLOW_TEST_DATABASE}
    )
    postgres.prepare(settings)  # create + migrate the retail_dags database
    airflow_stack.prepare(settings)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in airflow_stack.environment(settings).items():
            patch.setenv(name, value)
        # Tasks run in this process and call get_settings(): it must see the values set just now.
        get_settings.cache_clear()
        yield settings
    get_settings.cache_clear()


@pytest.fixture
def dags_db(airflow_env: Settings) -> Iterator[psycopg.Connection]:
    """Admin connection to `retail_dags`, with the dimension tables and their rejects emptied first."""
    with psycopg.connect(airflow_env.admin_dsn, autocommit=True) as conn:
        conn.execute("truncate raw.products, raw.stores, ops.rejected_rows, ops.alerts")
        yield conn
    get_settings.cache_clear()
