"""The driver's Spark UI listens on the local address only (settings.host), not on every interface.

Spark binds its UI to SPARK_LOCAL_IP, else 0.0.0.0; `spark_session` sets it for a local master. Starts
a real driver JVM in a process of its own and reads the kernel's socket table for its UI port.

    .venv/bin/python -m pytest tests/spark/test_ui_address.py
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from retail.settings import PROJECT_ROOT
from spark.session import local_bind_address
from tests.scratch import scratch_settings

pytestmark = pytest.mark.integration

DRIVER = (
    "import sys; from retail.settings import get_settings; from spark.session import spark_session; "
    "spark_session(get_settings()); print('ready', flush=True); sys.stdin.read()"
)


def free_port_in(first: int, last: int) -> int:
    for port in range(first, last):
        with socket.socket() as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}-{last}")


def listening_addresses(port: int) -> set[str]:
    """Local addresses of LISTEN sockets on `port`, from /proc/net/tcp and tcp6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:
                raw = bytes.fromhex(address)
                if len(raw) == 4:
                    found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:
                    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                    # Java listens on IPv6 sockets; ::ffff:a.b.c.d is the IPv4 address a.b.c.d.
                    found.add(socket.inet_ntop(socket.AF_INET6, words).removeprefix("::ffff:"))
    return found


def test_the_driver_ui_binds_the_local_address(tmp_path: Path) -> None:
    port = free_port_in(27400, 27500)
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("RETAIL_") and key != "SPARK_LOCAL_IP"
    }
    environment |= {"RETAIL_STATE_DIR": str(tmp_path / ".retail"), "RETAIL_SPARK_UI_PORT": str(port)}
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER],
        cwd=PROJECT_ROOT,
        env=environment,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert driver.stdout is not None
        assert driver.stdout.readline().strip() == "ready"
        assert listening_addresses(port) == {"127.0.0.1"}
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=60)


def test_a_remote_cluster_leaves_the_driver_reachable(tmp_path: Path) -> None:
    local = scratch_settings(tmp_path)
    assert local_bind_address(local) == "127.0.0.1"
    assert local_bind_address(local, "spark://127.0.0.1:7077") == "127.0.0.1"
    # Executors elsewhere connect back to the driver: it must not bind loopback.
    assert local_bind_address(local, "spark://spark-master:7077") is None
