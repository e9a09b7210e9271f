"""`up`, `down` and `status` of the local stack.

Services start in order (PostgreSQL, Kafka, then the stage services), in waves: those between two
services that later ones need (`Service.needed_by_later`) start together, and the next wave starts once
all of them passed their health checks. `down` stops the waves in reverse order, each wave at once.
A service already running is checked, not restarted, so a second `up` is harmless. External servers
(RETAIL_PG_URL, RETAIL_KAFKA_BOOTSTRAP) are not started but are health-checked and prepared
(migrations, topics) the same way.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from dimensions import load as dimensions
from retail.db import DatabaseUnavailable, migrate
from retail.settings import Settings
from retail.topics import ensure_topics
from spark.drain import drain
from stack import airflow, kafka, postgres, spark_cluster
from stack import dashboard_service as dashboard
from stack import stream_service as stream
from stack.errors import StackError
from stack.secrets import ensure_secrets, secure_state_dir
from stack.service import Service
from stack.supervisor import Supervisor


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    state: str  # "up", "down", "starting", "external"
    port: int | None
    pid: int | None
    detail: str

    def line(self) -> str:
        port = str(self.port) if self.port else "-"
        pid = str(self.pid) if self.pid else "-"
        return f"{self.name:<22} {self.state:<9} port {port:<6} pid {pid:<8} {self.detail}".rstrip()


def services(settings: Settings) -> list[Service]:
    """The supervised processes, in start order."""
    supervised: list[Service] = []
    if settings.embedded_postgres:
        # Migrations, first dimension load and Airflow's database come before any other service starts.
        database = postgres.service(settings)
        database = dataclasses.replace(database, on_ready=lambda: _prepare_postgres(settings))
        supervised.append(database)
    if settings.embedded_kafka:
        supervised.append(kafka.service(settings))
    if settings.spark_cluster:
        supervised.extend(spark_cluster.services(settings))
    if settings.stream_enabled:
        supervised.append(stream.service(settings))
    if settings.airflow_enabled:
        supervised.extend(airflow.services(settings))
    if settings.dashboard_enabled:
        supervised.append(dashboard.service(settings))
    return supervised


def waves(supervised: list[Service]) -> list[list[Service]]:
    """The start order cut after each service later ones need: `up` starts a wave's services together
    and waits for them before the next wave; `down` stops the waves in reverse, each wave at once."""
    cut: list[list[Service]] = [[]]
    for service in supervised:
        cut[-1].append(service)
        if service.needed_by_later:
            cut.append([])
    return [wave for wave in cut if wave]


def _prepare_postgres(settings: Settings) -> None:
    """The pipeline's database, migrations and first dimension load, then Airflow's database."""
    if settings.embedded_postgres:
        postgres.prepare(settings)
    else:
        migrate(settings)
    dimensions.load_if_empty(settings)
    if settings.airflow_enabled:
        airflow.prepare(settings)


def external_checks(settings: Settings) -> list[tuple[str, Callable[[], None], Callable[[], object]]]:
    """(name, health check, preparation) of each component served by an external server."""
    checks: list[tuple[str, Callable[[], None], Callable[[], object]]] = []
    if not settings.embedded_postgres:
        checks.append(
            ("postgres", lambda: postgres.health_check(settings), lambda: _prepare_postgres(settings))
        )
    if not settings.embedded_kafka:
        checks.append(("kafka", lambda: kafka.health_check(settings), lambda: ensure_topics(settings)))
    return checks


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def wait_healthy(
    name: str, check: Callable[[], None], timeout_s: float, is_alive: Callable[[], bool]
) -> None:
    deadline = time.monotonic() + timeout_s
    last_error = "no answer yet"
    while True:
        try:
            check()
            return
        except Exception as error:
            last_error = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if not is_alive():
            raise StackError(f"{name} exited during start-up ({last_error}); see `retail logs {name}`")
        if time.monotonic() > deadline:
            raise StackError(
                f"{name} did not become healthy within {timeout_s:.0f}s ({last_error}); "
                f"see `retail logs {name}`, or raise RETAIL_HEALTH_TIMEOUT_S"
            )
        time.sleep(0.25)


def up(settings: Settings, report: Callable[[str], None] = print) -> Settings:
    """Start every service and wait until healthy; returns settings including generated secrets."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    settings = ensure_secrets(settings)
    for folder in (settings.run_dir, settings.log_dir):
        folder.mkdir(parents=True, exist_ok=True)

    supervised = services(settings)  # resolves binaries first: a missing one fails before anything starts
    supervisor = Supervisor(settings)
    running = {info.name for info in supervisor.all_info() if info.state in {"RUNNING", "STARTING"}}
    for service in supervised:
        if service.name not in running and service.port and not port_is_free(settings.host, service.port):
            raise StackError(
                f"port {service.port} is already in use by another process ({service.name} needs it); "
                f"stop that process or set {service.port_setting} to a free port"
            )
    if settings.embedded_postgres and postgres.ensure_cluster(settings):
        report(f"initialized a new PostgreSQL cluster in {settings.pg_data_dir}")
        # initdb (as root: for the pgserver user) opened the folders above the data folder; close ours.
        secure_state_dir(settings)

    # External servers first: supervised services (Airflow) need an external PostgreSQL prepared.
    for name, check, prepare in external_checks(settings):
        wait_healthy(name, check, settings.health_timeout_s, lambda: True)
        _prepare(name, prepare)
        report(f"{name}: external server healthy")

    if not supervised:
        return settings  # every component is external: nothing to supervise
    supervisor.write_config(supervised)
    supervisor.start_daemon()
    # A program whose configuration changed (e.g. a RETAIL_* setting passed to Airflow) was just stopped
    # and re-added by start_daemon: it must be started again, not reported as already running.
    running = {info.name for info in supervisor.all_info() if info.state in {"RUNNING", "STARTING"}}
    if settings.spark_cluster and not running & {"spark-master", "spark-worker", "stream"}:
        # A cold start: no worker or application is left to take back (a master restarted next to a
        # running worker and stream keeps its records, and they re-register with it).
        spark_cluster.forget_recovery_state(settings)
    for wave in waves(supervised):
        for service in wave:
            if service.name in running:
                report(f"{service.name}: already running")
            else:
                supervisor.start(service.name, wait=False)
        for service in wave:

            def alive(name: str = service.name) -> bool:
                info = supervisor.info(name)
                return info is not None and info.state in {"RUNNING", "STARTING", "BACKOFF"}

            def running_and_healthy(service: Service = service) -> None:
                # Started without waiting for supervisord's startsecs: `up` returns only once supervisord
                # too counts the program as running, so `status` right after says "up", not "starting".
                info = supervisor.info(service.name)
                if info is None or info.state != "RUNNING":
                    raise StackError(f"supervisord reports {info.state if info else 'no such program'}")
                service.health_check()

            wait_healthy(service.name, running_and_healthy, settings.health_timeout_s, alive)
            if service.on_ready:
                _prepare(service.name, service.on_ready)
            report(f"{service.name}: healthy")
    return settings


def _prepare(name: str, action: Callable[[], object]) -> None:
    try:
        action()
    except DatabaseUnavailable as error:
        raise StackError(str(error)) from None


def down(settings: Settings, report: Callable[[str], None] = lambda line: None) -> bool:
    """Stop every supervised service and supervisord; data stays on disk. False if nothing ran.

    The embedded broker keeps messages in memory only: while the stream runs next to it, wait (up to
    RETAIL_STREAM_DRAIN_TIMEOUT_S, reported) until the stream has landed all of them first."""
    supervisor = Supervisor(settings)
    if not supervisor.is_running():
        return False
    states = {info.name: info.state for info in supervisor.all_info()}
    if settings.embedded_kafka and states.get("kafka") == "RUNNING" and states.get("stream") == "RUNNING":
        report(drain(settings, settings.stream_drain_timeout_s, report).summary())
    took: dict[str, float] = {}
    for wave in reversed(waves(services(settings))):
        took.update(supervisor.stop_together([service.name for service in wave]))
    if took:
        report("stopped: " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in took.items()))
    supervisor.shutdown()  # anything the configuration no longer lists, then supervisord itself
    return True


def status(settings: Settings) -> list[ComponentStatus]:
    """One line per component, whether supervised here or served by an external server."""
    supervisor = Supervisor(settings)
    infos = {info.name: info for info in supervisor.all_info()}
    lines = []
    for service in services(settings):
        info = infos.get(service.name)
        if info is None:
            detail = "not started; run `retail up`"
            if service.name == "postgres" and not (settings.pg_data_dir / "PG_VERSION").is_file():
                detail = f"no data directory at {settings.pg_data_dir}; `retail up` creates one"
            lines.append(ComponentStatus(service.name, "down", service.port, None, detail))
            continue
        state = {"RUNNING": "up", "STARTING": "starting", "BACKOFF": "starting"}.get(info.state, "down")
        detail = info.description if state == "up" else f"{info.state.lower()}"
        if info.last_error and state != "up":
            detail += f"; last error: {info.last_error}"
        if service.name == "stream":
            # A running process can hide a stopped query, a crash loop or a broker gap.
            health = stream.health(settings, running=state == "up")
            if health is not None and health.state != "ok":
                state, detail = health.state, f"{health.reason} ({detail})"
        lines.append(ComponentStatus(service.name, state, service.port, info.pid, detail))
    for name, check, _ in external_checks(settings):
        try:
            check()
            detail = "reachable"
        except Exception as error:
            detail = f"unreachable: {str(error).strip().splitlines()[0] if str(error).strip() else error!r}"
        host, port = settings.pg_host_port
        target = settings.bootstrap_servers if name == "kafka" else f"{host}:{port}"
        lines.append(ComponentStatus(name, "external", None, None, f"{target} {detail}"))
    return lines
