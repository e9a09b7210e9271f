"""The stall rule (`retail.stream_health.stall`) over plain numbers: waiting messages and idle time
decide, within one log (topic id); idle and just-started streams are not stalled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from retail.stream_health import stall

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(hours=1)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def test_messages_waiting_and_nothing_landed_for_longer_than_the_limit_is_a_stall() -> None:
    ends = {("tx", "id1", 0): 50, ("tx", "id1", 1): 40, ("rf", "id2", 0): 7}
    landed = {("tx", "id1", 0): 30, ("tx", "id1", 1): 40, ("rf", "id2", 0): 7}
    found = stall(ends, landed, {("tx", "id1"): ago(130), ("rf", "id2"): ago(130)}, LONG_AGO, NOW, 120)
    assert found is not None
    assert found.waiting == {"tx": 20}  # refunds is idle: everything landed
    assert found.reason(120) == (
        "stalled (no batch landed for over 120 s, RETAIL_STREAM_STALL_S): "
        "tx: 20 messages waiting, nothing landed for 130 s"
    )


def test_a_recent_batch_or_nothing_waiting_is_not_a_stall() -> None:
    ends = {("tx", "id1", 0): 50}
    recent = stall(ends, {("tx", "id1", 0): 30}, {("tx", "id1"): ago(60)}, LONG_AGO, NOW, 120)
    idle = stall(ends, {("tx", "id1", 0): 50}, {("tx", "id1"): ago(86_400)}, LONG_AGO, NOW, 120)
    assert recent is None and idle is None


def test_a_stream_started_less_than_the_limit_ago_or_not_running_is_not_flagged() -> None:
    ends = {("tx", "id1", 0): 50}
    assert stall(ends, {}, {}, ago(100), NOW, 120) is None
    assert stall(ends, {}, {}, None, NOW, 120) is None
    # Started long enough ago, never landed anything of this log: stalled since the start.
    found = stall(ends, {}, {}, ago(200), NOW, 120)
    assert found is not None and found.waiting == {"tx": 50} and round(found.idle_s["tx"]) == 200


def test_only_the_same_log_counts_after_a_broker_restart() -> None:
    """The new log (id2) restarts at 0: the old log's landed offsets and times say nothing about it."""
    ends = {("tx", "id2", 0): 12}
    landed = {("tx", "id1", 0): 5000}
    found = stall(ends, landed, {("tx", "id1"): ago(10)}, LONG_AGO, NOW, 120)
    assert found is not None and found.waiting == {"tx": 12}
    assert stall({("tx", "id2", 0): 12}, {("tx", "id2", 0): 12}, {}, LONG_AGO, NOW, 120) is None


def test_messages_after_a_long_idle_stall_only_once_they_waited_the_limit() -> None:
    """The watcher's view: the clock starts when it first saw them waiting, not at the last landing."""
    ends, landed = {("tx", "id1", 0): 60}, {("tx", "id1", 0): 50}
    long_idle = {("tx", "id1"): ago(3600)}
    assert stall(ends, landed, long_idle, LONG_AGO, NOW, 120, waiting_since={"tx": ago(5)}) is None
    found = stall(ends, landed, long_idle, LONG_AGO, NOW, 120, waiting_since={"tx": ago(121)})
    assert found is not None and found.waiting == {"tx": 10}
