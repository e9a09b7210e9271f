"""`retail up` runs the dashboard last, on RETAIL_DASHBOARD_PORT, with the stack's settings and no secret
in its supervisord environment; RETAIL_DASHBOARD_ENABLED=false leaves it out."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from stack import stack
from tests.conftest import isolated_settings
from tests.scratch import scratch_settings


def test_dashboard_is_the_last_service_with_the_stack_settings(tmp_path: Path) -> None:
    settings = scratch_settings(
        tmp_path / ".retail", dashboard_enabled=True, pg_database="shop", pg_analyst_password="s3cret"
    )
    services = stack.services(settings)
    dashboard = services[-1]
    assert dashboard.name == "dashboard"
    assert dashboard.port == settings.dashboard_port
    assert dashboard.port_setting == "RETAIL_DASHBOARD_PORT"
    assert dashboard.url == f"http://127.0.0.1:{settings.dashboard_port}"
    port_flag = dashboard.command.index("--server.port")
    assert dashboard.command[port_flag + 1] == str(settings.dashboard_port)
    assert dashboard.environment["RETAIL_PG_DATABASE"] == "shop"
    assert "s3cret" not in dashboard.environment.values()  # read from secrets.env by the process


def test_dashboard_can_be_left_out(tmp_path: Path) -> None:
    settings = scratch_settings(tmp_path / ".retail", dashboard_enabled=False)
    assert "dashboard" not in [service.name for service in stack.services(settings)]


@pytest.mark.integration
def test_retail_up_supervises_the_dashboard(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path / ".retail", dashboard_enabled=True)
    try:
        settings = stack.up(settings, report=lambda line: None)
        states = {component.name: component.state for component in stack.status(settings)}
        assert states["dashboard"] == "up"
        with urllib.request.urlopen(settings.dashboard_url, timeout=10) as response:
            assert response.status == 200 and b"<title>Streamlit</title>" in response.read()
    finally:
        stack.down(settings)
    assert "dashboard" not in {c.name for c in stack.status(settings) if c.state == "up"}
