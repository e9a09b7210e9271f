"""docker-compose.yml: a valid Compose file with the shape the production stack relies on.

The compose client's `config` command parses, interpolates and validates the file without a Docker
engine. It runs with a temporary state folder whose `secrets.env` holds freshly generated fake passwords
(the file `retail up` writes), so neither the developer's secrets nor their shell's RETAIL_* variables are
involved. The raw file is read as well, for what `config` normalises away (short `depends_on` entries)
and for what it resolves (interpolated passwords).

Needs a compose client: `docker compose` (v2 plugin) or Debian's `docker-compose`, which
`scripts/install-system-deps.sh` installs.

    .venv/bin/python -m pytest tests/compose
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from retail.settings import PROJECT_ROOT, SECRETS_FILE_NAME, Settings, env_name
from retail.stack.secrets import GENERATED_SECRETS

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
INSTALL_HINT = (
    "no compose client found (neither `docker compose` nor `docker-compose`); install one with "
    "`bash scripts/install-system-deps.sh` (runs: apt-get update && apt-get install -y "
    "--no-install-recommends docker-compose)"
)

LONG_RUNNING = {
    "postgres",
    "kafka",
    "spark-master",
    "spark-worker",
    "producer",
    "stream",
    "dashboard",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
}
ONE_SHOT = {"retail-init", "airflow-db", "airflow-init"}
# Built from docker/Dockerfile and configured through the RETAIL_* settings.
APP_SERVICES = {
    "retail-init",
    "producer",
    "stream",
    "spark-worker",
    "dashboard",
    "airflow-init",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
}
# Every app service waits for the migrations.
NEEDS_MIGRATIONS = APP_SERVICES - {"retail-init", "spark-worker", "airflow-init"}
SETTINGS_VARIABLES = {env_name(field) for field in Settings.model_fields} | {"RETAIL_JAVA_HOME"}
SECRET_VARIABLES = {env_name(name) for name in GENERATED_SECRETS}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|_KEY$", re.IGNORECASE)
INTERPOLATION = re.compile(r"\$\{(\w+)")
# user:password@ in a URL; the password is either an interpolation (which may hold spaces) or literal.
URL_PASSWORD = re.compile(r"://[\w.%-]+:(\$\{[^}]*\}|[^\s@/]+)@")


@dataclass(frozen=True)
class ComposeClient:
    command: tuple[str, ...]
    version: str

    @property
    def prints_json(self) -> bool:
        """v2 has `config --format json`; v1 prints YAML only."""
        return int(self.version.split(".")[0]) >= 2


@dataclass(frozen=True)
class ConfigRun:
    command: list[str]
    returncode: int
    stdout: str
    stderr: str


def find_compose_client() -> ComposeClient | None:
    """`docker compose` first (what users run), then the standalone `docker-compose`."""
    for command in (("docker", "compose"), ("docker-compose",)):
        if shutil.which(command[0]) is None:
            continue
        probe = subprocess.run(
            [*command, "version", "--short"], capture_output=True, text=True, timeout=60, check=False
        )
        if probe.returncode == 0 and probe.stdout.strip():
            return ComposeClient(command, probe.stdout.strip().removeprefix("v"))
    return None


def run_config(client: ComposeClient, state_dir: Path, env_file: Path) -> ConfigRun:
    """`config` with only the variables compose needs: the secrets come from `env_file` alone."""
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", str(state_dir))}
    if "DOCKER_CONFIG" in os.environ:  # where a `docker compose` plugin may be installed
        environment["DOCKER_CONFIG"] = os.environ["DOCKER_CONFIG"]
    environment["RETAIL_STATE_DIR"] = str(state_dir)
    command = [*client.command, "--file", str(COMPOSE_FILE), "--env-file", str(env_file), "config"]
    if client.prints_json:
        command += ["--format", "json"]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=environment, cwd=PROJECT_ROOT, check=False
    )
    return ConfigRun(command, result.returncode, result.stdout, result.stderr)


def write_env_file(path: Path, values: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def client() -> ComposeClient:
    found = find_compose_client()
    if found is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return found


@pytest.fixture(scope="module")
def fake_secrets() -> dict[str, str]:
    """Stand-ins generated like the real ones, so no password is written in this file."""
    return {variable: secrets.token_urlsafe(18) for variable in sorted(SECRET_VARIABLES)}


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory, fake_secrets: dict[str, str]) -> Path:
    state = tmp_path_factory.mktemp("compose") / ".retail"
    write_env_file(state / SECRETS_FILE_NAME, fake_secrets)
    return state


@pytest.fixture(scope="module")
def config_run(client: ComposeClient, state_dir: Path) -> ConfigRun:
    return run_config(client, state_dir, state_dir / SECRETS_FILE_NAME)


@pytest.fixture(scope="module")
def config(client: ComposeClient, config_run: ConfigRun) -> dict[str, Any]:
    """The file as the compose client resolves it (interpolated, env files merged, defaults filled)."""
    if config_run.returncode != 0:
        pytest.fail(f"`{' '.join(config_run.command)}` failed:\n{config_run.stderr}", pytrace=False)
    return json.loads(config_run.stdout) if client.prints_json else yaml.safe_load(config_run.stdout)


@pytest.fixture(scope="module")
def services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return config["services"]


@pytest.fixture(scope="module")
def source_text() -> str:
    return COMPOSE_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def source_services(source_text: str) -> dict[str, dict[str, Any]]:
    """The file as written (YAML anchors and merge keys resolved, nothing interpolated)."""
    return yaml.safe_load(source_text)["services"]


def environment_items(service: dict[str, Any]) -> Iterator[tuple[str, str]]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        for entry in environment:
            key, _, value = str(entry).partition("=")
            yield key, value
    else:
        for key, value in environment.items():
            yield str(key), "" if value is None else str(value)


def as_words(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(part) for part in value)
    return str(value)


def duplicate_keys(node: yaml.Node, path: str = "", seen: set[int] | None = None) -> list[str]:
    """Keys given twice in one mapping, found on the composed node graph (before merge keys apply)."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return []
    seen.add(id(node))
    found: list[str] = []
    if isinstance(node, yaml.MappingNode):
        keys = [key.value for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge"]
        found += [f"{path}{key}" for key in sorted({key for key in keys if keys.count(key) > 1})]
        for key, value in node.value:
            found += duplicate_keys(value, f"{path}{key.value}.", seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found += duplicate_keys(item, path, seen)
    return found


def test_config_validates(config_run: ConfigRun) -> None:
    assert config_run.returncode == 0, f"`{' '.join(config_run.command)}` failed:\n{config_run.stderr}"


def test_no_key_is_given_twice(source_text: str) -> None:
    # Debian's docker-compose (v1, PyYAML) silently keeps the last of two equal keys; v2 rejects them.
    assert not duplicate_keys(yaml.compose(source_text))


def test_every_service_is_present_and_classified(services: dict[str, dict[str, Any]]) -> None:
    # A new service must be added to LONG_RUNNING or ONE_SHOT here, which decides what is checked of it.
    assert set(services) == LONG_RUNNING | ONE_SHOT


def test_long_running_services_have_health_checks(services: dict[str, dict[str, Any]]) -> None:
    for name in sorted(LONG_RUNNING):
        healthcheck = services[name].get("healthcheck") or {}
        test = healthcheck.get("test")
        assert test and test != ["NONE"] and not healthcheck.get("disable"), f"{name} has no health check"


def test_one_shot_services_are_not_restarted(services: dict[str, dict[str, Any]]) -> None:
    for name in sorted(ONE_SHOT):
        assert str(services[name].get("restart", "no")) == "no", f"{name} would run again after it exits"
    for name in sorted(LONG_RUNNING):
        assert services[name].get("restart") in {"unless-stopped", "always"}, f"{name} is not restarted"


def test_no_service_sleeps(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        healthcheck = service.get("healthcheck") or {}
        for part in ("entrypoint", "command"):
            assert not re.search(r"\bsleep\b", as_words(service.get(part))), f"{name} {part} sleeps"
        assert not re.search(r"\bsleep\b", as_words(healthcheck.get("test"))), f"{name} health check sleeps"


def test_every_dependency_waits_for_a_condition(source_services: dict[str, dict[str, Any]]) -> None:
    for name, service in source_services.items():
        depends_on = service.get("depends_on")
        if depends_on is None:
            continue
        assert isinstance(depends_on, dict), f"{name}: depends_on must be a mapping with conditions"
        for dependency, options in depends_on.items():
            assert dependency in source_services, f"{name} depends on unknown service {dependency}"
            expected = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            condition = (options or {}).get("condition")
            assert condition == expected, f"{name} -> {dependency}: condition {condition!r}, want {expected}"


def test_app_services_wait_for_the_migrations(source_services: dict[str, dict[str, Any]]) -> None:
    for name in sorted(NEEDS_MIGRATIONS):
        assert "retail-init" in (source_services[name].get("depends_on") or {}), name


def test_no_literal_password_in_the_file(source_text: str, source_services: dict[str, Any]) -> None:
    for name, service in source_services.items():
        for key, value in environment_items(service):
            if SECRET_NAME.search(key) and not key.endswith("_FILE"):  # a path to a secret is fine
                assert value.startswith("${") and value.endswith("}"), f"{name}: {key} is not interpolated"
    urls_with_password = 0
    for line_number, line in enumerate(source_text.splitlines(), start=1):
        for password in URL_PASSWORD.findall(line):
            urls_with_password += 1
            variable = INTERPOLATION.match(password)
            assert variable and variable.group(1) in SECRET_VARIABLES, (
                f"docker-compose.yml:{line_number}: URL password {password!r} is not one of "
                f"{sorted(SECRET_VARIABLES)} interpolated"
            )
    assert urls_with_password >= 3  # RETAIL_PG_URL and Airflow's two metadata database URLs
    # The admin password reaches PostgreSQL and the migrations by name, from the env file.
    assert "POSTGRES_PASSWORD: ${RETAIL_PG_ADMIN_PASSWORD:?" in source_text
    assert "RETAIL_PG_URL: postgresql://postgres:${RETAIL_PG_ADMIN_PASSWORD:?" in source_text


def test_secrets_come_from_the_env_file(
    services: dict[str, dict[str, Any]], fake_secrets: dict[str, str]
) -> None:
    admin_password = fake_secrets["RETAIL_PG_ADMIN_PASSWORD"]
    assert dict(environment_items(services["postgres"]))["POSTGRES_PASSWORD"] == admin_password
    for name in sorted(APP_SERVICES):
        environment = dict(environment_items(services[name]))
        for variable, value in fake_secrets.items():
            assert environment.get(variable) == value, f"{name} does not get {variable} from the env file"
        assert f":{admin_password}@postgres:5432/" in environment["RETAIL_PG_URL"], name


def test_missing_secrets_stop_compose_with_the_fix(
    client: ComposeClient, state_dir: Path, fake_secrets: dict[str, str], tmp_path: Path
) -> None:
    without_admin = {key: value for key, value in fake_secrets.items() if key != "RETAIL_PG_ADMIN_PASSWORD"}
    run = run_config(client, state_dir, write_env_file(tmp_path / "partial.env", without_admin))
    assert run.returncode != 0
    assert "retail secrets" in run.stderr, run.stderr


def test_retail_variables_are_settings(services: dict[str, dict[str, Any]], source_text: str) -> None:
    set_here = {key for service in services.values() for key, _ in environment_items(service)}
    interpolated = set(INTERPOLATION.findall(source_text))
    unknown = {name for name in set_here | interpolated if name.startswith("RETAIL_")} - SETTINGS_VARIABLES
    assert not unknown, f"not settings fields (retail/settings.py): {sorted(unknown)}"


def test_app_services_share_the_project_image_and_settings(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in sorted(APP_SERVICES):
        service = services[name]
        assert service["build"]["dockerfile"] == "docker/Dockerfile", name
        assert service["image"] == services["retail-init"]["image"], name
        environment = dict(environment_items(service))
        assert environment["RETAIL_KAFKA_BOOTSTRAP"] == "kafka:9092", name
        assert environment["RETAIL_SPARK_MASTER"] == "spark://spark-master:7077", name
        assert environment["RETAIL_STATE_DIR"] == "/data/state", name
        # v2 prints volumes as mappings, v1 as "source:target:mode" strings.
        mounts = [
            (volume["source"], volume["target"]) if isinstance(volume, dict) else tuple(volume.split(":")[:2])
            for volume in service["volumes"]
        ]
        assert ("state", "/data/state") in mounts, f"{name} does not mount the state volume"


def test_host_ports_match_the_embedded_defaults(source_services: dict[str, dict[str, Any]]) -> None:
    defaults = Settings.model_fields
    expected = {
        "postgres": f"{defaults['pg_port'].default}:5432",
        "kafka": f"{defaults['kafka_port'].default}:{defaults['kafka_port'].default}",
        "airflow-api-server": "18080:8080",
        "dashboard": "18501:8501",
    }
    for name, mapping in expected.items():
        assert mapping in [str(port) for port in source_services[name].get("ports", [])], name
