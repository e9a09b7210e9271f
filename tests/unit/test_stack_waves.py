"""Start and stop order of the default stack: waves cut after the services later ones need, and stop
waits short enough for a quick `retail down` (goal 15 s; each wave costs its slowest service)."""

from __future__ import annotations

from pathlib import Path

from stack import stack
from stack.service import Service
from tests.scratch import scratch_settings


def default_stack(tmp_path: Path) -> list[Service]:
    settings = scratch_settings(
        tmp_path / "state", airflow_enabled=True, stream_enabled=True, dashboard_enabled=True
    )
    return stack.services(settings)


def test_default_stack_starts_in_four_waves(tmp_path: Path) -> None:
    names = [[service.name for service in wave] for wave in stack.waves(default_stack(tmp_path))]
    assert names == [
        ["postgres"],
        ["kafka"],
        ["stream", "airflow-api-server"],
        ["airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "dashboard"],
    ]


def test_waves_keep_every_service_once_in_start_order(tmp_path: Path) -> None:
    supervised = default_stack(tmp_path)
    assert [service for wave in stack.waves(supervised) for service in wave] == supervised
    assert stack.waves([]) == []


def test_no_stop_wait_outlasts_the_down_goal_alone(tmp_path: Path) -> None:
    waits = {service.name: service.stop_wait_s for service in default_stack(tmp_path)}
    assert waits["airflow-scheduler"] <= 5  # it never exits by itself after SIGTERM
    assert max(waits.values()) <= 20
