"""Optional SASL/TLS for a real Kafka cluster: validated settings, and the same settings reaching every
client (producer, admin, both stream sources, dead-letter replay, the dashboard's lag probe)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from producer.kafka_sink import producer_config
from retail.settings import Settings, SettingsError
from retail.topics import kafka_security, spark_kafka_security
from spark.kafka_source import KafkaRange, KafkaRanges, KafkaStreamReader
from tests.scratch import scratch_settings


def sasl_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "kafka_bootstrap": "broker1:9093,broker2:9093",
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "retail",
        "kafka_sasl_password": 'pa"ss',
        "kafka_ssl_cafile": tmp_path / "ca.pem",
    }
    return scratch_settings(tmp_path, **{**values, **overrides})


def test_plaintext_adds_nothing(tmp_path: Path) -> None:
    settings = scratch_settings(tmp_path)
    assert kafka_security(settings) == {} and spark_kafka_security(settings) == {}


def test_sasl_ssl_reaches_kafka_python_clients(tmp_path: Path) -> None:
    settings = sasl_settings(tmp_path)
    expected = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "retail",
        "sasl_plain_password": 'pa"ss',
        "ssl_cafile": str(tmp_path / "ca.pem"),
    }
    assert kafka_security(settings) == expected
    config = producer_config(settings, "test")
    assert {key: config[key] for key in expected} == expected
    assert config["enable_idempotence"] is True  # security did not displace the delivery settings


def test_sasl_ssl_reaches_sparks_connector_with_quoted_credentials(tmp_path: Path) -> None:
    options = spark_kafka_security(sasl_settings(tmp_path))
    assert options["kafka.security.protocol"] == "SASL_SSL"
    assert options["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    module = "org.apache.kafka.common.security.scram.ScramLoginModule"
    assert options["kafka.sasl.jaas.config"] == f'{module} required username="retail" password="pa\\"ss";'
    assert options["kafka.ssl.truststore.location"] == str(tmp_path / "ca.pem")


def test_the_python_source_carries_security_to_executors(tmp_path: Path) -> None:
    security = json.dumps(kafka_security(sasl_settings(tmp_path)), sort_keys=True)
    reader = KafkaStreamReader({"bootstrap": "broker1:9093", "topic": "t", "security": security})
    assert reader.security == security
    part = pickle.loads(pickle.dumps(KafkaRanges("broker1:9093", "t", (KafkaRange(0, 0, 5),), security)))
    assert json.loads(part.security)["sasl_plain_password"] == 'pa"ss'


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kafka_sasl_password": None}, "RETAIL_KAFKA_SASL_PASSWORD"),
        ({"kafka_ssl_certfile": "/tmp/cert.pem"}, "RETAIL_KAFKA_SSL_KEYFILE"),
        ({"kafka_security_protocol": "TLS"}, "RETAIL_KAFKA_SECURITY_PROTOCOL"),
    ],
)
def test_incomplete_security_settings_name_the_fix(tmp_path: Path, overrides: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        sasl_settings(
            tmp_path, **overrides
        ) if "kafka_security_protocol" not in overrides else scratch_settings(tmp_path, **overrides)
