"""Kafka topics of the platform. The embedded broker does not auto-create topics, so everything that
produces or consumes calls `ensure_topics` first (it is idempotent)."""

from __future__ import annotations

import contextlib
import json

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from retail.settings import Settings


def topic_partitions(settings: Settings) -> dict[str, int]:
    return {
        settings.transactions_topic: settings.transactions_partitions,
        settings.refunds_topic: settings.refunds_partitions,
    }


_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


def kafka_security(settings: Settings) -> dict[str, str]:
    """kafka-python keyword arguments for RETAIL_KAFKA_SECURITY_PROTOCOL and its SASL/TLS settings
    (none for the plaintext default). Strings only: the stream's source carries them to executors."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return {}
    options = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_sasl_mechanism and settings.kafka_sasl_username and settings.kafka_sasl_password:
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    for name in ("cafile", "certfile", "keyfile"):
        path = getattr(settings, f"kafka_ssl_{name}")
        if path is not None:
            options[f"ssl_{name}"] = str(path)
    return options


def spark_kafka_security(settings: Settings) -> dict[str, str]:
    """The same settings as options of Spark's own Kafka connector (Java client names, PEM files; for
    mutual TLS the key file holds the private key followed by its certificate chain)."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return {}
    options = {"kafka.security.protocol": settings.kafka_security_protocol}
    if settings.kafka_sasl_mechanism and settings.kafka_sasl_username and settings.kafka_sasl_password:
        login = json.dumps(settings.kafka_sasl_username)
        password = json.dumps(settings.kafka_sasl_password.get_secret_value())
        options["kafka.sasl.mechanism"] = settings.kafka_sasl_mechanism
        options["kafka.sasl.jaas.config"] = (
            f"{_LOGIN_MODULES[settings.kafka_sasl_mechanism]} required username={login} password={password};"
        )
    if settings.kafka_ssl_cafile is not None:
        options["kafka.ssl.truststore.type"] = "PEM"
        options["kafka.ssl.truststore.location"] = str(settings.kafka_ssl_cafile)
    if settings.kafka_ssl_keyfile is not None:
        options["kafka.ssl.keystore.type"] = "PEM"
        options["kafka.ssl.keystore.location"] = str(settings.kafka_ssl_keyfile)
    return options


def admin_client(settings: Settings, timeout_ms: int = 5000) -> KafkaAdminClient:
    return KafkaAdminClient(
        **kafka_security(settings),
        bootstrap_servers=settings.bootstrap_servers,
        client_id="retail-admin",
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
    )


def ensure_topics(settings: Settings) -> list[str]:
    """Create the platform's topics that do not exist yet; returns the names created."""
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(name, partitions, replication_factor=1)
            for name, partitions in topic_partitions(settings).items()
            if name not in existing
        ]
        if wanted:
            # A concurrent caller may create one between list and create: the goal is met all the same.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(wanted)
        return [topic.name for topic in wanted]
    finally:
        admin.close()
