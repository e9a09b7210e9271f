"""`retail airflow prepare`, docker compose's airflow-init: Airflow's private files, its metadata as its own
role and the writer pool, from settings alone (run here against the DAG tests' metadata DB). No `dbt parse`:
nothing reads its manifest (the DAGs' Cosmos build tasks parse the project themselves).
"""

from __future__ import annotations

import psycopg
from typer.testing import CliRunner

from retail.dbt import manifest_path
from retail.settings import Settings
from stack.airflow import CONNECTIONS_FILE_NAME
from stack.cli import app


def test_airflow_prepare_writes_private_config_and_no_manifest(airflow_env: Settings) -> None:
    manifest = manifest_path(airflow_env)
    manifest.unlink(missing_ok=True)
    result = CliRunner().invoke(app, ["airflow", "prepare"])
    assert result.exit_code == 0, result.output
    assert not manifest.exists()
    home = airflow_env.airflow_home
    for name in ("airflow.cfg", CONNECTIONS_FILE_NAME):
        assert oct((home / name).stat().st_mode & 0o777) == "0o600", name
    config = (home / "airflow.cfg").read_text(encoding="utf-8")
    # The metadata database as Airflow's own login, never the superuser.
    assert f"://{airflow_env.airflow_db_user}:" in config
    assert f"://{airflow_env.pg_admin_user}:" not in config
    assert airflow_env.airflow_db_password is not None
    with psycopg.connect(
        host=airflow_env.pg_host_port[0],
        port=airflow_env.pg_host_port[1],
        dbname=airflow_env.airflow_db_name,
        user=airflow_env.airflow_db_user,
        password=airflow_env.airflow_db_password.get_secret_value(),
    ) as conn:
        assert conn.execute("select slots from slot_pool where pool = 'retail_writers'").fetchone() == (1,)
