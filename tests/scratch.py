"""Settings for a stack of its own: what tests and benchmarks start next to a developer's `retail up`.

Free ports for every listening service, embedded PostgreSQL and Kafka, the given state folder, no `.env`,
and the optional services (Airflow, the streaming job, the dashboard) off unless the caller turns them on.
"""

from __future__ import annotations

import socket
from pathlib import Path

from retail.settings import Settings, load_settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scratch_settings(state_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "state_dir": state_dir,
        "pg_port": free_port(),
        "kafka_port": free_port(),
        "airflow_port": free_port(),
        "spark_ui_port": free_port(),
        "dbt_docs_port": free_port(),
        "dashboard_port": free_port(),
        "pg_url": None,
        "kafka_bootstrap": None,
        "airflow_enabled": False,
        "stream_enabled": False,
        "dashboard_enabled": False,
        "_env_file": None,
    }
    values.update(overrides)
    return load_settings(**values)
