"""Start and stop order of the default stack: waves cut after the services later ones need, stop waits
short enough for a quick `retail down` (goal 15 s; each wave costs its slowest service), and which
processes the stop signal reaches."""

from __future__ import annotations

import configparser
from pathlib import Path

from stack import stack
from stack.service import Service
from stack.supervisor import render_config
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


def test_stop_signal_reaches_the_stream_driver_alone_and_every_kill_the_group(tmp_path: Path) -> None:
    settings = scratch_settings(tmp_path / "state", airflow_enabled=True, stream_enabled=True)
    config = configparser.ConfigParser(interpolation=None)
    config.read_string(render_config(settings, stack.services(settings)))
    programs = {name.removeprefix("program:"): config[name] for name in config if name.startswith("program:")}
    # The driver stops its queries and its JVM; signalled too, the JVM died under the queries (exit 1).
    assert {name for name, program in programs.items() if program["stopasgroup"] == "false"} == {"stream"}
    assert all(program["killasgroup"] == "true" for program in programs.values())
