"""The rules a docker-compose.yml must follow to start, read from the file the way the engine would.

No Docker engine runs here, so each rule models what the engine and the images do with the file:
`${VAR:-default}` interpolation, YAML anchors and merge keys, which address and port each program binds
(from its command line and environment), what a health check connects to, which secrets and settings
reach a container, and which settings its code reads (`settings_reads`). Each rule returns its problems,
one line each, so a test shows all of them at once; tests run the rules on the real file and on the file
as it was before issue 14 (tests/compose/data/), where each rule must find the defect it exists for.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from retail.settings import PROJECT_ROOT, SECRETS_FILE_NAME, Settings, env_name
from spark.session import local_bind_address
from stack.secrets import GENERATED_SECRETS
from tests.compose import settings_reads

ANY_ADDRESS = {"0.0.0.0", "*", "::", ""}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
PROJECT_IMAGE_DOCKERFILE = "docker/Dockerfile"
FIELDS = set(Settings.model_fields)
_VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


class InterpolationError(ValueError):
    """A `${VAR:?message}` without a value: compose stops with the message."""


def interpolate(value: Any, environment: dict[str, str]) -> Any:
    """Compose's variable substitution on every string of a loaded file."""
    if isinstance(value, dict):
        return {key: interpolate(item, environment) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environment) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(4)
        operator, argument = match.group(2), match.group(3) or ""
        current = environment.get(name)
        unset_or_empty = not current if operator and operator.startswith(":") else current is None
        if operator and operator.endswith("-") and unset_or_empty:
            return argument
        if operator and operator.endswith("?") and unset_or_empty:
            raise InterpolationError(f"{name}: {argument}")
        return current or ""

    return _VARIABLE.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


@dataclass
class Compose:
    """A compose file loaded and interpolated with `environment` (the shell running `docker compose`)."""

    path: Path
    environment: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.text = self.path.read_text(encoding="utf-8")
        self.raw: dict[str, Any] = yaml.safe_load(self.text)
        self.data: dict[str, Any] = interpolate(self.raw, self.environment)
        self.services: dict[str, dict[str, Any]] = self.data["services"]

    def with_environment(self, **environment: str) -> Compose:
        return Compose(self.path, {**self.environment, **environment})


def words(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(part) for part in value]
    return shlex.split(str(value))


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dict(str(entry).partition("=")[::2] for entry in environment)
    return {str(key): "" if value is None else str(value) for key, value in environment.items()}


def env_files(service: dict[str, Any]) -> list[str]:
    files = service.get("env_file") or []
    return [files] if isinstance(files, str) else [str(f if isinstance(f, str) else f["path"]) for f in files]


def secret_names(service: dict[str, Any]) -> set[str]:
    return {entry if isinstance(entry, str) else entry["source"] for entry in service.get("secrets") or []}


def is_project_image(service: dict[str, Any]) -> bool:
    return (service.get("build") or {}).get("dockerfile") == PROJECT_IMAGE_DOCKERFILE


def variables_received(compose: Compose, name: str) -> set[str]:
    """Every variable a container gets: its environment, its env files' keys (the generated secrets file
    holds the generated secrets), and the variables interpolated into its definition."""
    service = compose.services[name]
    received = set(environment_of(service))
    for path in env_files(service):
        if Path(path).name == SECRETS_FILE_NAME:
            received |= {env_name(secret) for secret in GENERATED_SECRETS}
    received |= {
        m.group(1) or m.group(4) for m in _VARIABLE.finditer(yaml.safe_dump(compose.raw["services"][name]))
    }
    return received


# Listening sockets -----------------------------------------------------------------------------------


def _option(command: list[str], name: str, default: str | None = None) -> str | None:
    for index, word in enumerate(command):
        if word == name and index + 1 < len(command):
            return command[index + 1]
        if word.startswith(f"{name}="):
            return word.split("=", 1)[1]
    return default


def _spark_conf(command: list[str]) -> dict[str, str]:
    return dict(command[i + 1].split("=", 1) for i, word in enumerate(command[:-1]) if word == "--conf")


def listeners(name: str, service: dict[str, Any]) -> list[tuple[str, int]]:
    """(bind address, port) of what the service's program listens on, from its command and environment."""
    command = words(service.get("entrypoint")) + words(service.get("command"))
    environment = environment_of(service)
    image = str(service.get("image", ""))
    hostname = service.get("hostname") or name
    ui_address = environment.get("SPARK_LOCAL_IP", "0.0.0.0")  # Spark's web UIs bind SPARK_LOCAL_IP or all
    if image.startswith("postgres:"):
        conf = dict(command[i + 1].split("=", 1) for i, word in enumerate(command[:-1]) if word == "-c")
        return [(conf.get("listen_addresses", "*"), int(conf.get("port", 5432)))]
    if image.startswith("apache/kafka"):
        found = []
        for listener in environment.get("KAFKA_LISTENERS", "").split(","):
            address = listener.split("://", 1)[1]
            host, _, port = address.rpartition(":")
            found.append((host, int(port)))
        return found
    if "org.apache.spark.deploy.master.Master" in command:
        host = _option(command, "--host", hostname)
        return [
            (str(host), int(_option(command, "--port", "7077") or 7077)),
            (ui_address, int(_option(command, "--webui-port", "8080") or 8080)),
        ]
    if "org.apache.spark.deploy.worker.Worker" in command:
        return [(ui_address, int(_option(command, "--webui-port", "8081") or 8081))]
    if command[:1] == ["spark-submit"]:
        settings = app_settings(environment)
        bind = local_bind_address(settings, _option(command, "--master"))
        return [(environment.get("SPARK_LOCAL_IP") or bind or "0.0.0.0", settings.spark_ui_port)]
    if command[:2] == ["streamlit", "run"]:
        return [
            (
                _option(command, "--server.address", "0.0.0.0") or "",
                int(_option(command, "--server.port", "8501") or 0),
            )
        ]
    if command[:2] == ["airflow", "api-server"]:
        host = _option(command, "--host", environment.get("AIRFLOW__API__HOST", "0.0.0.0"))
        port = _option(command, "--port", environment.get("AIRFLOW__API__PORT", "8080"))
        return [(str(host), int(port or 8080))]
    if (
        command[:2] == ["airflow", "scheduler"]
        and environment.get("AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK", "").lower() == "true"
    ):
        host = environment.get("AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST", "0.0.0.0")
        return [(host, int(environment.get("AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT", 8974)))]
    return []


def app_settings(environment: dict[str, str]) -> Settings:
    """The settings a project container builds from its environment (nothing else: no .env, no files)."""
    values = {
        key.removeprefix("RETAIL_").lower(): value
        for key, value in environment.items()
        if key.startswith("RETAIL_") and key.removeprefix("RETAIL_").lower() in FIELDS
    }
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def health_targets(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(host, port) each health check connects to; none for a check that runs a command."""
    test = words((service.get("healthcheck") or {}).get("test"))
    text = " ".join(test)
    targets = [(h, int(p)) for h, p in re.findall(r"/dev/tcp/([^/\s]+)/(\d+)", text)]
    targets += [(h, int(p)) for h, p in re.findall(r"https?://([^:/\s]+):(\d+)", text)]
    targets += [(h, int(p)) for h, p in re.findall(r"--bootstrap-server[ =]([^:\s]+):(\d+)", text)]
    if "pg_isready" in test:
        targets.append(
            (_option(test, "--host", "localhost") or "", int(_option(test, "--port", "5432") or 5432))
        )
    return targets


def reaches(target_host: str, bind: str, names: set[str]) -> bool:
    """Whether a connection to target_host from inside the container reaches a socket bound to `bind`."""
    if bind in ANY_ADDRESS:
        return target_host in LOOPBACK | names
    if bind in LOOPBACK:
        return target_host in LOOPBACK
    return target_host == bind or (bind in names and target_host in names)


def has_health_check(service: dict[str, Any]) -> bool:
    healthcheck = service.get("healthcheck") or {}
    return (
        bool(healthcheck.get("test"))
        and healthcheck.get("test") != ["NONE"]
        and not healthcheck.get("disable")
    )


# Rules --------------------------------------------------------------------------------------------------


def health_check_problems(compose: Compose) -> list[str]:
    """Every health check connects to a port its service listens on, at an address it binds."""
    problems = []
    for name, service in sorted(compose.services.items()):
        names = {name, str(service.get("hostname") or name)}
        sockets = listeners(name, service)
        for host, port in health_targets(service):
            if not any(p == port and reaches(host, bind, names) for bind, p in sockets):
                problems.append(
                    f"{name}: health check connects to {host}:{port}, but it listens on {sockets}"
                )
    return problems


def dependency_problems(compose: Compose) -> list[str]:
    """Every depends_on condition can be met: the dependency exists, has what the condition waits for
    (a passing health check; an exit, never a restart), and its own dependencies can be met."""
    problems: list[str] = []
    unhealthy = {p.split(":")[0] for p in health_check_problems(compose)}

    def can_start(name: str, path: tuple[str, ...]) -> bool:
        if name in path:
            problems.append(f"dependency cycle: {' -> '.join((*path, name))}")
            return False
        ok = True
        depends_on = compose.services[name].get("depends_on") or {}
        if isinstance(depends_on, list):
            depends_on = {dependency: {"condition": "service_started"} for dependency in depends_on}
        for dependency, options in depends_on.items():
            condition = (options or {}).get("condition", "service_started")
            if dependency not in compose.services:
                problems.append(f"{name} depends on unknown service {dependency}")
                ok = False
                continue
            target = compose.services[dependency]
            if condition == "service_healthy" and (not has_health_check(target) or dependency in unhealthy):
                problems.append(
                    f"{name} waits for {dependency} to be healthy, which its health check cannot pass"
                )
                ok = False
            if condition == "service_completed_successfully" and str(target.get("restart", "no")) != "no":
                problems.append(f"{name} waits for {dependency} to exit, but it is restarted")
                ok = False
            ok = can_start(dependency, (*path, name)) and ok
        return ok

    for name in sorted(compose.services):
        can_start(name, ())
    return sorted(set(problems))


def entry_modules(service: dict[str, Any]) -> tuple[set[str], str]:
    """The project modules a container's command runs (and the code of a `python -c` health check)."""
    command = words(service.get("entrypoint")) + words(service.get("command"))
    test = words((service.get("healthcheck") or {}).get("test"))
    snippet = test[test.index("-c") + 1] if "python" in test and "-c" in test else ""
    modules: set[str] = set()
    scripts = [word for word in command if word.endswith(".py")]
    modules |= {settings_reads.module_name(PROJECT_ROOT / script) for script in scripts}
    if command[:2] == ["streamlit", "run"]:
        pages = (PROJECT_ROOT / scripts[0]).parent / "app_pages"
        modules |= {settings_reads.module_name(page) for page in pages.glob("*.py")}
    if command[:1] == ["retail"]:
        modules |= {_cli_module(command[1:])}
    if command[:1] == ["airflow"]:
        modules |= {settings_reads.module_name(dag) for dag in (PROJECT_ROOT / "dags").glob("*.py")}
        # Task processes also run the application the DAGs spark-submit (its driver runs in this container).
        modules |= {"spark.batch_job"}
    if "org.apache.spark.deploy.worker.Worker" in command:
        # Executors run whatever drivers send: the stream's and the batch job's code.
        modules |= {"spark.streaming_job", "spark.batch_job"}
    return modules, snippet


def _cli_module(arguments: list[str]) -> str:
    """The module of the Typer command `retail ARGS` runs (a sub-app's own module when it has one)."""
    import inspect

    import typer.main

    from stack.cli import app

    command = typer.main.get_command(app)
    for argument in arguments:
        sub = getattr(command, "commands", {}).get(argument)
        if sub is None:
            break
        command = sub
    callback = inspect.unwrap(command.callback) if command.callback else None
    return callback.__module__ if callback else "stack.cli"


def secret_field(secret: str) -> str | None:
    """The settings field a secret file sets (file name = its variable in lower case), if any."""
    name = secret.lower().removeprefix("retail_")
    return name if secret.lower().startswith("retail_") and name in FIELDS else None


def settings_given(compose: Compose, name: str) -> dict[str, str]:
    """Settings fields a container receives, with how (variable, env file or secret file)."""
    service = compose.services[name]
    given = {
        variable.removeprefix("RETAIL_").lower(): f"variable {variable}"
        for variable in variables_received(compose, name)
        if variable.startswith("RETAIL_")
    }
    for secret in secret_names(service):
        given[secret_field(secret) or secret] = f"secret {secret}"
    return given


def environment_problems(compose: Compose) -> list[str]:
    """Each project container gets only settings and secrets its code reads."""
    problems = []
    for name, service in sorted(compose.services.items()):
        if not is_project_image(service):
            continue
        modules, snippet = entry_modules(service)
        read = settings_reads.settings_read(modules, snippet)
        for setting, how in sorted(settings_given(compose, name).items()):
            if setting not in FIELDS:
                problems.append(f"{name}: {how} is not a setting (retail/settings.py)")
            elif setting not in read:
                entry = ", ".join(sorted(modules)[:2]) + (" ..." if len(modules) > 2 else "")
                problems.append(f"{name}: {how}, which its code ({entry or 'none of ours'}) never reads")
    return problems


def database_service(compose: Compose) -> str:
    return next(
        name
        for name, service in compose.services.items()
        if str(service.get("image", "")).startswith("postgres:") and "POSTGRES_DB" in environment_of(service)
    )


def superuser_secret(compose: Compose) -> tuple[str, str]:
    """(secret file, variable) that set the postgres image's superuser password ('' when unused)."""
    database = database_service(compose)
    password_file = environment_of(compose.services[database]).get("POSTGRES_PASSWORD_FILE", "")
    match = _VARIABLE.search(environment_of(compose.raw["services"][database]).get("POSTGRES_PASSWORD", ""))
    return Path(password_file).name, (match.group(1) or match.group(4)) if match else ""


def superuser_problems(compose: Compose) -> list[str]:
    """No container but the database gets the superuser's password, or connects as the superuser."""
    secret, variable = superuser_secret(compose)
    database = database_service(compose)
    superuser = environment_of(compose.services[database]).get("POSTGRES_USER", "postgres")
    problems = []
    for name, service in sorted(compose.services.items()):
        if name == database:
            continue
        if secret and secret in secret_names(service):
            problems.append(f"{name}: gets the superuser's password (secret {secret})")
        if variable and variable in variables_received(compose, name):
            problems.append(f"{name}: gets the superuser's password ({variable})")
        for key, value in environment_of(compose.raw["services"][name]).items():
            if re.search(rf"://{re.escape(superuser)}[:@]", value) or (
                key in {"PGUSER", "POSTGRES_USER"} and value == superuser
            ):
                problems.append(f"{name}: {key} connects as the superuser {superuser}")
    return problems


def published_port_problems(compose: Compose) -> list[str]:
    """Published ports bind 127.0.0.1 unless RETAIL_HOST opens them (and then they follow it)."""
    problems = []
    for address, current in (
        ("127.0.0.1", compose),
        ("0.0.0.0", compose.with_environment(RETAIL_HOST="0.0.0.0")),
    ):
        for name, service in sorted(current.services.items()):
            for port in service.get("ports") or []:
                host_ip = port.get("host_ip", "") if isinstance(port, dict) else ""
                if isinstance(port, str | int) and str(port).count(":") == 2:
                    host_ip = str(port).split(":")[0]
                if host_ip != address:
                    problems.append(f"{name}: port {port} binds {host_ip or 'every address'}, want {address}")
    return problems


def spark_core_problems(compose: Compose) -> list[str]:
    """The worker's cores cover the stream's spark.cores.max plus one application more (the batch job,
    which takes the master's spark.deploy.defaultCores)."""
    master = next(
        (
            s
            for s in compose.services.values()
            if "org.apache.spark.deploy.master.Master" in words(s.get("command"))
        ),
        None,
    )
    worker = next(
        (
            s
            for s in compose.services.values()
            if "org.apache.spark.deploy.worker.Worker" in words(s.get("command"))
        ),
        None,
    )
    stream = next(
        (s for s in compose.services.values() if words(s.get("command"))[:1] == ["spark-submit"]), None
    )
    if master is None or worker is None or stream is None:
        return ["no Spark master, worker or stream in the file"]
    default = re.search(
        r"spark\.deploy\.defaultCores=(\d+)", environment_of(master).get("SPARK_MASTER_OPTS", "")
    )
    stream_cores = _spark_conf(words(stream.get("command"))).get("spark.cores.max")
    worker_cores = _option(words(worker.get("command")), "--cores") or environment_of(worker).get(
        "SPARK_WORKER_CORES"
    )
    problems = []
    if stream_cores is None:
        problems.append("stream: no spark.cores.max, so it takes every worker core and the batch job none")
    if default is None:
        problems.append("spark-master: no spark.deploy.defaultCores, so the batch job takes every free core")
    if worker_cores is None:
        problems.append("spark-worker: no --cores (it offers the host's cores, unknown here)")
    if problems or default is None:
        return problems
    batch_cores = int(default.group(1))
    if int(worker_cores or 0) < int(stream_cores or 0) + batch_cores:
        problems.append(f"spark-worker: {worker_cores} cores < stream {stream_cores} + batch {batch_cores}")
    return problems


def connector_problems(compose: Compose, dockerfile: Path) -> list[str]:
    """Spark's Kafka connector comes with the image, never downloaded when a container starts."""
    problems = []
    for name, service in sorted(compose.services.items()):
        command = words(service.get("command"))
        if "--packages" in command or any(w.startswith("spark.jars.packages") for w in command):
            problems.append(f"{name}: downloads Spark packages at start")
        if is_project_image(service) and environment_of(service).get("RETAIL_STREAM_SOURCE") == "kafka":
            text = dockerfile.read_text(encoding="utf-8")
            if "spark-sql-kafka" not in text or "exit 1" not in text:
                problems.append(
                    f"{name}: uses Spark's Kafka connector, which {dockerfile.name} does not bake in"
                )
    return problems


def _one_shot_running(compose: Compose, *arguments: str) -> str | None:
    for name, service in compose.services.items():
        if words(service.get("command"))[: len(arguments)] == list(arguments):
            return name
    return None


def start_up_problems(compose: Compose) -> list[str]:
    """What must exist before the pipeline runs: dimensions loaded before the stream, DAGs unpaused,
    Airflow prepared (config, metadata, writer pool) before its processes start, connections enough."""
    problems = []
    init = _one_shot_running(compose, "retail", "db", "init")
    stream = next(
        (n for n, s in compose.services.items() if words(s.get("command"))[:1] == ["spark-submit"]), None
    )
    if init is None:
        problems.append("no container runs `retail db init` (migrations + dimension files)")
    elif stream and init not in (compose.services[stream].get("depends_on") or {}):
        problems.append(f"stream does not wait for {init}: events before the dimensions are dead-lettered")
    airflow = {n: s for n, s in compose.services.items() if words(s.get("command"))[:1] == ["airflow"]}
    prepare = _one_shot_running(compose, "retail", "airflow", "prepare")
    if prepare is None:
        problems.append(
            "no container runs `retail airflow prepare` (Airflow's config, metadata and writer pool)"
        )
    for name, service in sorted(airflow.items()):
        environment = environment_of(service)
        if environment.get("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "true").lower() != "false":
            problems.append(f"{name}: DAGs start paused, nothing would run")
        if prepare and prepare not in (service.get("depends_on") or {}):
            problems.append(f"{name}: does not wait for {prepare}")
    database = database_service(compose)
    command = words(compose.services[database].get("command"))
    settings = dict(command[i + 1].split("=", 1) for i, word in enumerate(command[:-1]) if word == "-c")
    allowed = int(settings.get("max_connections", 100))
    airflow_connections = 0
    for service in airflow.values():
        environment = environment_of(service)
        airflow_connections += int(environment.get("AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE", 5)) + int(
            environment.get("AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW", 10)
        )
    tasks = max(
        (int(environment_of(s).get("AIRFLOW__CORE__PARALLELISM", 32)) for s in airflow.values()), default=0
    )
    # Besides Airflow: the stream, the dashboard's pool, dbt threads, analysts; 60 is their share.
    needed = airflow_connections + tasks + 60
    if allowed < needed:
        problems.append(
            f"{database}: max_connections {allowed} < {needed} "
            f"(Airflow pools {airflow_connections}, tasks {tasks}, others 60)"
        )
    return problems
