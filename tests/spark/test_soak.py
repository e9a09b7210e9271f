"""Load test (marker `soak`, `make soak`; left out of the default run): the streaming job runs for 10
minutes next to processes keeping both cores busy while events keep arriving. It may fall behind; it
must not stop: same process, no failure recorded, no loss alert, and every event lands in the end."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta

import pytest

from retail.settings import Settings
from tests.scratch import free_port
from tests.spark.conftest import (
    load_dimensions,
    module_settings,
    scalar,
    start_job,
    stop_job,
    truncate_speed_tables,
)
from tests.spark.events import backfill, now_minute, send_events
from tests.waiting import wait_for

# 10 minutes of load plus catching up: beyond the suite's default 600 s timeout.
pytestmark = [pytest.mark.integration, pytest.mark.soak, pytest.mark.timeout(1800)]

SOAK_S = 600
ROUND_S = 5.0
BASKETS_PER_ROUND = 150


def burn_cores(count: int) -> list[subprocess.Popen]:
    """Processes that spin forever: the busy machine of the measured false alarms (load average 7)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def test_stream_keeps_running_for_ten_minutes_on_a_busy_machine(
    platform: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("soak")
    settings = module_settings(platform, tmp, "soak", spark_master="local[2]", spark_ui_port=free_port())
    truncate_speed_tables(settings)
    load_dimensions(settings)
    since = scalar(settings, "select now()")
    job = start_job(settings, tmp / "stream.log")
    burners = burn_cores(4)
    sent = refunds_sent = 0
    try:
        started = time.monotonic()
        rounds = 0
        while time.monotonic() - started < SOAK_S:
            baskets, refunds = backfill(rounds, BASKETS_PER_ROUND, now_minute(), timedelta(seconds=ROUND_S))
            send_events(settings, baskets, refunds)
            sent += len(baskets)
            refunds_sent += len(refunds)
            rounds += 1
            # Pace the producer (a steady arrival rate), and check the stream is still alive.
            time.sleep(max(0.0, started + rounds * ROUND_S - time.monotonic()))
            assert job.poll() is None, f"the streaming job exited with {job.returncode}"
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    try:
        wait_for(
            lambda: scalar(settings, "select count(*) from raw.transactions") == sent,
            timeout_s=600,
            what="every basket after the soak",
        )
        wait_for(lambda: scalar(settings, "select count(*) from raw.refunds") == refunds_sent, what="refunds")
        assert job.poll() is None
        assert (
            scalar(settings, "select count(*) from ops.stream_failures where failed_at > %s", (since,)) == 0
        )
        assert (
            scalar(
                settings,
                "select count(*) from ops.alerts where source = 'speed_layer' and raised_at > %s",
                (since,),
            )
            == 0
        )
        assert scalar(settings, "select count(*) from ops.dead_letter") == 0
    finally:
        stop_job(job)
