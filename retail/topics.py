"""Kafka topics of the platform. The embedded broker does not auto-create topics, so everything that
produces or consumes calls `ensure_topics` first (it is idempotent)."""

from __future__ import annotations

import contextlib

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from retail.settings import Settings


def topic_partitions(settings: Settings) -> dict[str, int]:
    return {
        settings.transactions_topic: settings.transactions_partitions,
        settings.refunds_topic: settings.refunds_partitions,
    }


def admin_client(settings: Settings, timeout_ms: int = 5000) -> KafkaAdminClient:
    return KafkaAdminClient(
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
