"""The writer lock on the embedded PostgreSQL: a second writer waits for the first, a wait that runs out
names the holder, and the lock is given back when the holder's block fails."""

from __future__ import annotations

import threading

import psycopg
import pytest

from retail.settings import Settings
from retail.writer_lock import WriterLockTimeout, current_holder, writer_lock
from tests.conftest import waiting_for_writer_lock
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def test_a_second_writer_waits_until_the_first_is_done(platform: Settings) -> None:
    order: list[str] = []

    def second() -> None:
        with writer_lock(platform, "second"):
            order.append("second")

    with writer_lock(platform, "first"):
        thread = threading.Thread(target=second)
        thread.start()
        wait_for(
            lambda: waiting_for_writer_lock(platform, "second"), timeout_s=30, what="second writer waiting"
        )
        order.append("first")
    thread.join(timeout=30)
    assert order == ["first", "second"]


def test_a_wait_that_runs_out_names_the_holder(platform: Settings) -> None:
    holder = "airflow:retail_batch.recompute_closed_hours"
    named = r"retail_batch\.recompute_closed_hours \(pid \d+"
    with (
        writer_lock(platform, holder),
        pytest.raises(WriterLockTimeout, match=named),
        writer_lock(platform, "retail dbt", wait_s=0.2),
    ):
        pass


def test_the_lock_is_given_back_when_the_writer_fails(platform: Settings) -> None:
    with pytest.raises(RuntimeError, match="boom"), writer_lock(platform, "failing"):
        raise RuntimeError("boom")
    with psycopg.connect(platform.writer_dsn) as conn:
        assert current_holder(conn) is None
    with writer_lock(platform, "next", wait_s=1):
        pass
