"""What the stack needs to know to supervise one process and tell whether it is healthy."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HEALTH_TIMEOUT_S = 3


def http_body(url: str) -> bytes:
    """GET `url` for a health check: within HEALTH_TIMEOUT_S, and only a 200 answer counts."""
    with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S) as response:
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")
        return response.read()


def http_json(url: str) -> Any:
    return json.loads(http_body(url))


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    # Raises (any exception, message shown to the user) while the service is not ready.
    health_check: Callable[[], None]
    port: int | None = None
    # The setting to change when the port is taken, named in the busy-port error.
    port_setting: str | None = None
    url: str | None = None
    # Run as this OS user (supervisord drops privileges); None keeps the current user.
    user: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    directory: str | None = None
    # Exit statuses supervisord does not restart (a service that gave up on purpose).
    expected_exit_codes: tuple[int, ...] = (0,)
    # Later services need this one running to start and to stop cleanly (PostgreSQL, the broker, the
    # api-server the Airflow processes report to). It splits the stack into waves: `up` starts the
    # services between two such ones together, and `down` stops them together, in reverse order.
    needed_by_later: bool = False
    stop_signal: str = "TERM"
    # The stop signal goes to the whole process group (children that would not stop with their parent);
    # False sends it to the service's own process, which stops its children itself. The kill after
    # stop_wait_s always reaches the group.
    stop_as_group: bool = True
    # Seconds between the stop signal and SIGKILL (supervisord's stopwaitsecs).
    stop_wait_s: int = 10
    # Runs once after the first successful health check of an `up` (migrations, topics).
    on_ready: Callable[[], None] | None = None
