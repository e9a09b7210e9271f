"""`dag.test()` runs of retail_serving: a basket landed after the last build moves from the live slice
into the built facts and rollups, the horizons move forward, and a rerun changes nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from retail.dbt import SERVING_MODELS, run_dbt
from retail.settings import Settings, get_settings
from stack import postgres
from tests.checksums import table_checksums
from tests.dbt.dataset import LATE_BASKET, insert_basket, load_dataset

pytestmark = pytest.mark.integration


@pytest.fixture
def serving_settings(airflow_env: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    settings = airflow_env.model_copy(update={"pg_database": "retail_serving_it"})
    postgres.prepare(settings)
    with psycopg.connect(settings.writer_dsn, autocommit=True) as conn:
        load_dataset(conn)
    assert run_dbt(settings, ["build"]).success
    monkeypatch.setenv("RETAIL_PG_DATABASE", settings.pg_database)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def run_dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    from stack.airflow import DAGS_FOLDER

    get_settings.cache_clear()
    bag = DagBag(dag_folder=str(DAGS_FOLDER / "retail_serving.py"))
    assert bag.import_errors == {}
    return bag.get_dag("retail_serving").test()


def horizons(conn: psycopg.Connection) -> dict[str, int]:
    return dict(
        conn.execute(
            "select relation_name, built_through_xid::text::bigint from ops.serving_horizons"
        ).fetchall()
    )


def test_refresh_builds_what_landed_since_the_last_build(serving_settings: Settings) -> None:
    with psycopg.connect(serving_settings.writer_dsn, autocommit=True) as conn:
        insert_basket(conn, LATE_BASKET)
        before = horizons(conn)
        transaction_id = LATE_BASKET[0]
        assert conn.execute(
            "select bool_and(is_provisional) from marts.fct_sales_live where transaction_id = %s",
            (transaction_id,),
        ).fetchone() == (True,)

        run = run_dag()
        assert run.state == "success"
        after = horizons(conn)
        assert set(after) == set(SERVING_MODELS)
        assert all(after[name] > before[name] for name in SERVING_MODELS)
        assert conn.execute(
            "select count(*) from marts.fct_sales where transaction_id = %s", (transaction_id,)
        ).fetchone() == (len(LATE_BASKET[-1]),)
        for live_view in ("fct_sales_live", "agg_kpis_daily_live"):
            provisional = conn.execute(f"select count(*) from marts.{live_view} where is_provisional")
            assert provisional.fetchone() == (0,), live_view
        built = table_checksums(conn, [f"marts.{name}" for name in SERVING_MODELS])

        assert run_dag().state == "success"
        assert table_checksums(conn, [f"marts.{name}" for name in SERVING_MODELS]) == built


def test_the_refresh_is_a_writer(airflow_env: Settings) -> None:
    """In the one-slot writer pool with the writer lock, like retail_batch's building tasks."""
    from airflow.dag_processing.dagbag import DagBag

    from retail.writer_lock import WRITER_POOL
    from stack.airflow import DAGS_FOLDER

    dag = DagBag(dag_folder=str(DAGS_FOLDER / "retail_serving.py")).get_dag("retail_serving")
    (refresh,) = dag.tasks
    assert refresh.pool == WRITER_POOL
    assert refresh.pre_execute is not None  # dags.common.batch.take_writer_lock
