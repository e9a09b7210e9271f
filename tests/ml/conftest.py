"""Fixtures of the ML tests: marts built from the producer's simulator in a database of their own.

`ml_settings` points at `retail_ml_it` in the session's embedded PostgreSQL, filled once per session by
`tests/ml/producer_data.py` (4 weeks of 5,000 simulated customers, `dbt build`). `first_runs` runs both
ML jobs once; tests that add runs of their own compare against it instead of assuming "latest".
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from ml.jobs import run_all
from ml.runs import RunRecord
from retail.settings import Settings
from tests.ml.producer_data import SimulatedData, marts_database

ML_DATABASE = "retail_ml_it"


@pytest.fixture(scope="package")
def ml_marts(platform: Settings) -> tuple[Settings, SimulatedData]:
    return marts_database(platform, ML_DATABASE)


@pytest.fixture(scope="package")
def ml_settings(ml_marts: tuple[Settings, SimulatedData]) -> Settings:
    return ml_marts[0]


@pytest.fixture(scope="package")
def simulated(ml_marts: tuple[Settings, SimulatedData]) -> SimulatedData:
    return ml_marts[1]


@pytest.fixture(scope="package")
def first_runs(ml_settings: Settings) -> dict[str, RunRecord]:
    return {record.kind: record for record in run_all(ml_settings)}


@pytest.fixture
def ml_db(ml_settings: Settings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(ml_settings.writer_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture
def ml_analyst(ml_settings: Settings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(ml_settings.analyst_dsn, autocommit=True) as conn:
        yield conn
