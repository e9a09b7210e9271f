"""The dashboard as a supervised service of `retail up`: `streamlit run dashboard/streamlit_app.py`.

Healthy when Streamlit's own health endpoint answers. The process gets every non-secret RETAIL_*
setting of the stack that starts it (as Airflow's processes do), so it reads the same database; the
analyst password comes from the state folder's secrets file like everywhere else.
"""

from __future__ import annotations

import sys

from retail.settings import PROJECT_ROOT, Settings
from stack.airflow import retail_environment
from stack.service import Service, http_body

APP = PROJECT_ROOT / "dashboard" / "streamlit_app.py"


def command(settings: Settings) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        settings.host,
        "--server.port",
        str(settings.dashboard_port),
        "--server.headless",
        "true",
        # No reloads on file edits in a running platform, and nothing sent to Streamlit's servers.
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        # No full garbage collection after every script run: with 20 viewers it held the GIL for 7% of
        # the server's time (profiled); Python's own collector still runs.
        "--runner.postScriptGC",
        "false",
    ]


def health_check(settings: Settings) -> None:
    http_body(f"{settings.dashboard_url}/_stcore/health")


def service(settings: Settings) -> Service:
    return Service(
        name="dashboard",
        command=command(settings),
        health_check=lambda: health_check(settings),
        port=settings.dashboard_port,
        port_setting="RETAIL_DASHBOARD_PORT",
        url=settings.dashboard_url,
        environment=retail_environment(settings),
        directory=str(PROJECT_ROOT),
        # Streamlit holds no state worth waiting for: open sessions just reconnect after an `up`.
        stop_wait_s=5,
    )
