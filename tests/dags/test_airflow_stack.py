"""`retail up` with Airflow: the four processes come up healthy, serve retail_dimensions without import
errors, run it through the LocalExecutor (the DAG is unpaused at creation), and stop with `retail down`.

A stack of its own (temporary state folder, free ports), like `retail up` on a fresh checkout.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from retail.settings import Settings
from stack import airflow, stack
from tests.conftest import isolated_settings
from tests.scratch import free_port
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

AIRFLOW_SERVICES = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")


@pytest.fixture(scope="module")
def airflow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = isolated_settings(
        tmp_path_factory.mktemp("airflow-stack") / ".retail", airflow_enabled=True, airflow_port=free_port()
    )
    try:
        yield stack.up(settings, report=lambda line: None)
    finally:
        stack.down(settings)


class Api:
    """The REST API as the admin user of the printed login."""

    def __init__(self, settings: Settings) -> None:
        assert settings.airflow_admin_password is not None
        self.base = settings.airflow_url
        credentials = {
            "username": settings.airflow_admin_user,
            "password": settings.airflow_admin_password.get_secret_value(),
        }
        token = self._call("/auth/token", data=credentials)["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def _call(self, path: str, data: dict | None = None, headers: dict | None = None) -> Any:
        request = urllib.request.Request(
            self.base + path,
            data=json.dumps(data).encode() if data is not None else None,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def get(self, path: str) -> Any:
        return self._call(path, headers=self.headers)


def test_airflow_is_healthy_and_serves_the_dags(airflow_stack: Settings) -> None:
    health = airflow.health(airflow_stack)
    assert {component: health[component]["status"] for component in health} == {
        "metadatabase": "healthy",
        "scheduler": "healthy",
        "triggerer": "healthy",
        "dag_processor": "healthy",
    }
    states = {component.name: component.state for component in stack.status(airflow_stack)}
    assert all(states[name] == "up" for name in AIRFLOW_SERVICES)

    api = Api(airflow_stack)
    expected = {path.stem for path in airflow.DAGS_FOLDER.glob("retail_*.py")}

    def served() -> dict[str, dict]:
        return {dag["dag_id"]: dag for dag in api.get("/api/v2/dags")["dags"]}

    # The dag-processor parses the files one after the other.
    wait_for(
        lambda: expected <= served().keys(),
        timeout_s=180,
        what=f"the API to serve {sorted(expected)}",
        interval_s=2,
    )
    dags = served()
    assert api.get("/api/v2/importErrors")["total_entries"] == 0
    assert {dag_id: dags[dag_id]["is_paused"] for dag_id in expected} == dict.fromkeys(expected, False)


def test_second_up_restarts_nothing(airflow_stack: Settings) -> None:
    """Same settings, same supervisord config: running Airflow processes are checked, not restarted."""
    before = {component.name: component.pid for component in stack.status(airflow_stack)}
    reported: list[str] = []
    stack.up(airflow_stack, report=reported.append)
    assert {component.name: component.pid for component in stack.status(airflow_stack)} == before
    assert all(f"{name}: already running" in reported for name in AIRFLOW_SERVICES)


def test_scheduled_run_loads_the_dimensions(airflow_stack: Settings) -> None:
    api = Api(airflow_stack)

    def runs() -> list[dict]:
        return api.get("/api/v2/dags/retail_dimensions/dagRuns")["dag_runs"]

    wait_for(
        lambda: (current := runs()) and current[0]["state"] in {"success", "failed"},
        timeout_s=180,
        what="the first scheduled retail_dimensions run to finish",
        interval_s=2,
    )
    assert runs()[0]["state"] == "success", runs()
    with psycopg.connect(airflow_stack.writer_dsn) as conn:
        counts = conn.execute("select (select count(*) from raw.products), (select count(*) from raw.stores)")
        assert counts.fetchone() == (245, 30)


def test_airflow_files_are_private_and_down_stops_everything(airflow_stack: Settings) -> None:
    home = airflow_stack.airflow_home
    for name in ("airflow.cfg", airflow.PASSWORDS_FILE_NAME, airflow.CONNECTIONS_FILE_NAME):
        assert (home / name).stat().st_mode & 0o777 == 0o600
    config = (airflow_stack.run_dir / "supervisord.conf").read_text()
    assert airflow_stack.airflow_admin_password is not None and airflow_stack.airflow_db_password is not None
    for secret in (airflow_stack.airflow_admin_password, airflow_stack.airflow_db_password):
        assert secret.get_secret_value() not in config

    assert stack.down(airflow_stack) is True
    assert {component.state for component in stack.status(airflow_stack)} == {"down"}
    with pytest.raises(OSError):
        airflow.health(airflow_stack)
    assert not Path(airflow_stack.run_dir / "supervisor.sock").exists()
