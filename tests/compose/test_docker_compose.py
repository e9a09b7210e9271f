"""docker-compose.yml: a stack that would start, with least privilege, read the way the engine reads it.

No Docker engine runs here. The rules in compose_rules.py model what the engine and the images do with
the file (interpolation, bind addresses, health checks, secrets, what each container's code reads); each
runs on the real file, which must pass, and on the file as it was before issue 14
(data/docker-compose.before.yml), where it must find the defect it exists for. The compose client's
`config` additionally validates the file against its schema (`bash scripts/install-system-deps.sh`
installs Debian's docker-compose).

    .venv/bin/python -m pytest tests/compose
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from retail.settings import PROJECT_ROOT, Settings, load_settings
from stack.secrets import COMPOSE_SUPERUSER_SECRET, ensure_secrets, write_compose_secrets
from tests.compose import compose_rules as rules

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
BEFORE_FILE = Path(__file__).parent / "data" / "docker-compose.before.yml"
DOCKERFILE = PROJECT_ROOT / "docker" / "Dockerfile"
# The file before issue 14 needed its passwords for interpolation; stand-ins, never real ones.
BEFORE_ENVIRONMENT = {f"RETAIL_PG_{role}_PASSWORD": "stand-in" for role in ("ADMIN", "WRITER", "ANALYST")}
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
ONE_SHOT = {"retail-init", "airflow-init"}
INSTALL_HINT = (
    "no compose client found (neither `docker compose` nor `docker-compose`); install one with "
    "`bash scripts/install-system-deps.sh`"
)

Rule = Callable[[rules.Compose], list[str]]
# Each rule, and a phrase of the problem it must report on the file before issue 14.
RULES: dict[str, tuple[Rule, str]] = {
    "health checks target a bound port": (rules.health_check_problems, "spark-master: health check"),
    "depends_on conditions can be met": (rules.dependency_problems, "waits for spark-master"),
    "environment holds only what the code reads": (rules.environment_problems, "dashboard: variable"),
    "only the database gets the superuser": (rules.superuser_problems, "airflow-init: gets the superuser"),
    "published ports on 127.0.0.1": (rules.published_port_problems, "postgres: port 15432:5432"),
    "stream and batch both get cores": (rules.spark_core_problems, "stream: no spark.cores.max"),
    "dimensions, unpaused DAGs, prepare, connections": (rules.start_up_problems, "DAGs start paused"),
    "Kafka connector baked into the image": (
        lambda compose: rules.connector_problems(compose, DOCKERFILE),
        "stream: downloads Spark packages",
    ),
}


@pytest.fixture(scope="module")
def compose() -> rules.Compose:
    return rules.Compose(COMPOSE_FILE)


@pytest.fixture(scope="module")
def before() -> rules.Compose:
    return rules.Compose(BEFORE_FILE, BEFORE_ENVIRONMENT)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_the_file_follows_the_rule(compose: rules.Compose, rule: str) -> None:
    check, _ = RULES[rule]
    assert check(compose) == []


@pytest.mark.parametrize("rule", sorted(RULES))
def test_the_rule_finds_the_defect_of_the_file_before_issue_14(before: rules.Compose, rule: str) -> None:
    check, expected = RULES[rule]
    problems = check(before)
    assert any(expected in problem for problem in problems), problems


def test_rules_see_a_health_check_on_the_wrong_address(compose: rules.Compose) -> None:
    """The rule itself, on the current file with the master's health check moved to 127.0.0.1."""
    broken = rules.Compose(COMPOSE_FILE)
    broken.services["spark-master"]["healthcheck"]["test"] = ["CMD", "bash", "-c", "</dev/tcp/127.0.0.1/7077"]
    assert rules.health_check_problems(broken) == [
        "spark-master: health check connects to 127.0.0.1:7077, but it listens on "
        "[('spark-master', 7077), ('0.0.0.0', 8080)]"
    ]
    assert "spark-worker waits for spark-master to be healthy, which its health check cannot pass" in (
        rules.dependency_problems(broken)
    )


def test_rules_see_a_secret_the_code_never_reads(compose: rules.Compose) -> None:
    broken = rules.Compose(COMPOSE_FILE)
    broken.services["dashboard"]["secrets"].append("retail_pg_writer_password")
    broken.services["producer"]["secrets"] = [COMPOSE_SUPERUSER_SECRET]
    problems = rules.environment_problems(broken) + rules.superuser_problems(broken)
    assert any(p.startswith("dashboard: secret retail_pg_writer_password, which its code") for p in problems)
    assert f"producer: gets the superuser's password (secret {COMPOSE_SUPERUSER_SECRET})" in problems


def test_opening_the_ports_follows_retail_host(compose: rules.Compose) -> None:
    opened = compose.with_environment(RETAIL_HOST="0.0.0.0")
    published = [str(port) for service in opened.services.values() for port in service.get("ports") or []]
    assert published and all(port.startswith("0.0.0.0:") for port in published)


def test_every_service_is_present_and_classified(compose: rules.Compose) -> None:
    # A new service must be added to LONG_RUNNING or ONE_SHOT here, which decides what is checked of it.
    assert set(compose.services) == LONG_RUNNING | ONE_SHOT
    for name in sorted(LONG_RUNNING):
        assert rules.has_health_check(compose.services[name]), f"{name} has no health check"
        assert compose.services[name].get("restart") in {"unless-stopped", "always"}, name
    for name in sorted(ONE_SHOT):
        assert str(compose.services[name].get("restart", "no")) == "no", name


def test_no_key_is_given_twice(compose: rules.Compose) -> None:
    # Debian's docker-compose (v1, PyYAML) silently keeps the last of two equal keys; v2 rejects them.
    def duplicates(node: yaml.Node) -> list[str]:
        if isinstance(node, yaml.MappingNode):
            keys = [key.value for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge"]
            found = [key for key in set(keys) if keys.count(key) > 1]
            return found + [d for _, value in node.value for d in duplicates(value)]
        if isinstance(node, yaml.SequenceNode):
            return [d for item in node.value for d in duplicates(item)]
        return []

    assert duplicates(yaml.compose(compose.text)) == []


def test_no_password_is_in_the_file_or_an_environment(compose: rules.Compose) -> None:
    for name, service in compose.raw["services"].items():
        environment = rules.environment_of(service)
        assert not any("PASSWORD" in key and not key.endswith("_FILE") for key in environment), name
        assert not any(
            "@" in value and ":" in value.split("://", 1)[-1].split("@")[0] for value in environment.values()
        ), f"{name}: a URL with a password"
        assert not rules.env_files(service), f"{name}: env_file hands over every secret"


def test_secret_files_are_what_retail_secrets_writes(compose: rules.Compose, tmp_path: Path) -> None:
    settings = ensure_secrets(load_settings(state_dir=tmp_path / ".retail", _env_file=None))
    folder = write_compose_secrets(settings)
    declared = compose.with_environment(RETAIL_STATE_DIR=str(settings.state_dir)).data["secrets"]
    assert {Path(secret["file"]) for secret in declared.values()} == set(folder.iterdir())
    assert {name: Path(secret["file"]).name for name, secret in declared.items()} == {
        name: name for name in declared
    }
    # Every app container's secret sets a setting of the same name (retail.settings reads the folder).
    for name, service in compose.services.items():
        if rules.is_project_image(service):
            assert all(rules.secret_field(secret) for secret in rules.secret_names(service)), name
    # Private folder, files readable by the containers' own user (bind mounts keep host modes).
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    # Nobody else may list or read the state folder (as root the pgserver group may traverse it).
    assert settings.state_dir.stat().st_mode & 0o067 == 0
    # A second run keeps the superuser's password: the database volume was initialised with it.
    first = (folder / COMPOSE_SUPERUSER_SECRET).read_text(encoding="utf-8")
    write_compose_secrets(settings)
    assert (folder / COMPOSE_SUPERUSER_SECRET).read_text(encoding="utf-8") == first


def test_settings_read_the_secret_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a container sees: RETAIL_PG_URL without a password, its secrets under /run/secrets."""
    folder = tmp_path / "run-secrets"
    folder.mkdir()
    (folder / "retail_pg_admin_password").write_text("a/b c\n", encoding="utf-8")
    (folder / "retail_pg_writer_password").write_text("writer-secret", encoding="utf-8")
    monkeypatch.setenv("RETAIL_SECRETS_DIR", str(folder))
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        state_dir=tmp_path / "state",
        pg_url="postgresql://retail_admin@postgres:5432/retail",
    )
    assert settings.admin_dsn == "postgresql://retail_admin:a%2Fb%20c@postgres:5432/retail"
    assert settings.writer_dsn == "postgresql://retail_writer:writer-secret@postgres:5432/retail"
    assert settings.pg_analyst_password is None  # not mounted, not known


def find_compose_client() -> list[str] | None:
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        probe = subprocess.run([*command, "version"], capture_output=True, text=True, timeout=60, check=False)
        if probe.returncode == 0:
            return command
    return None


def test_the_compose_client_accepts_the_file(tmp_path: Path) -> None:
    client = find_compose_client()
    if client is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    state = tmp_path / ".retail"
    write_compose_secrets(ensure_secrets(load_settings(state_dir=state, _env_file=None)))
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "RETAIL_STATE_DIR": str(state)}
    result = subprocess.run(
        [*client, "--file", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        cwd=PROJECT_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_host_ports_match_the_embedded_defaults(compose: rules.Compose) -> None:
    defaults = Settings.model_fields
    expected = {
        "postgres": f"127.0.0.1:{defaults['pg_port'].default}:5432",
        "kafka": f"127.0.0.1:{defaults['kafka_port'].default}:{defaults['kafka_port'].default}",
        "airflow-api-server": f"127.0.0.1:{defaults['airflow_port'].default}:8080",
        "dashboard": f"127.0.0.1:{defaults['dashboard_port'].default}:8501",
    }
    for name, mapping in expected.items():
        assert mapping in [str(port) for port in compose.services[name].get("ports", [])], name
