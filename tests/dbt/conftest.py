"""Fixtures of the dbt tests: a database of their own with the dataset of dataset.py, built once.

The dbt tests run in `retail_dbt_it`, created and migrated in the session's embedded PostgreSQL like
the platform's own database, so emptying raw/speed/batch tables and dropping marts here cannot disturb
other test folders.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from retail.dbt import run_dbt
from retail.settings import Settings
from stack import postgres
from tests.dbt.dataset import load_dataset


@pytest.fixture(scope="package")
def dbt_settings(platform: Settings) -> Settings:
    """The session's stack, pointed at a database of the dbt tests' own."""
    settings = platform.model_copy(update={"pg_database": "retail_dbt_it"})
    postgres.prepare(settings)
    return settings


@pytest.fixture(scope="package")
def dbt_writer(dbt_settings: Settings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(dbt_settings.writer_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="package")
def built(dbt_settings: Settings, dbt_writer: psycopg.Connection) -> object:
    """The dataset loaded and `dbt build` run once over it; returns dbt's result."""
    load_dataset(dbt_writer)
    return run_dbt(dbt_settings, ["build"])
