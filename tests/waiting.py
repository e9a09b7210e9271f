"""The one way tests wait for something another process does: poll a condition until it holds.

Never a bare `sleep()` for ordering, and never a silent give-up: a timeout fails the test naming what
was awaited. Timeouts are generous (a loaded 2-core machine), never a measure of speed."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def wait_for(
    condition: Callable[[], object],
    timeout_s: float = 240,
    what: str = "condition",
    progress: Callable[[], object] | None = None,
    job: subprocess.Popen | None = None,
    log: Path | None = None,
    interval_s: float = 0.5,
) -> None:
    """Poll `condition` until truthy. With `progress`, `timeout_s` counts from the last change of its
    value: a loaded machine that keeps moving is waited for, a stuck one is not. With `job`, fail at
    once when that process has ended (quoting the end of its `log`)."""
    deadline = time.monotonic() + timeout_s
    last = progress() if progress else None
    while not condition():
        if job is not None and job.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:]) if log else ""
            raise AssertionError(f"the process exited ({job.returncode}) while waiting for {what}\n{tail}")
        if progress is not None and (now := progress()) != last:
            last, deadline = now, time.monotonic() + timeout_s
        if time.monotonic() > deadline:
            stalled = " without progress" if progress else ""
            raise AssertionError(f"timed out after {timeout_s:.0f}s{stalled} waiting for {what}")
        time.sleep(interval_s)
