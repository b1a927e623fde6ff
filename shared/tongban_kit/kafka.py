"""Kafka clients configured one way for the whole platform."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from tongban_kit.settings import NodeSettings

__all__ = ["build_consumer", "build_producer", "ensure_topics"]

logger = logging.getLogger("tongban.kafka")


def build_producer(node: NodeSettings, *, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=node.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=node.kafka_enable_idempotence,
        linger_ms=2,
        request_timeout_ms=10_000,
        metadata_max_age_ms=30_000,
    )


def build_consumer(node: NodeSettings, *topics: str, group_id: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=node.kafka_bootstrap_servers,
        group_id=group_id,
        client_id=group_id,
        enable_auto_commit=False,
        # A broker that lost its offsets (the embedded one restarts empty) replays from the
        # start; the inbox makes that harmless.
        auto_offset_reset="earliest",
        fetch_max_wait_ms=node.kafka_fetch_max_wait_ms,
        metadata_max_age_ms=5_000,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
    )


async def ensure_topics(
    node: NodeSettings, topics: Iterable[str], *, partitions: int = 3
) -> None:
    """Create the topics that do not exist yet (each producer and consumer does so on start)."""
    wanted = sorted(set(topics))
    if not wanted:
        return
    admin = AIOKafkaAdminClient(
        bootstrap_servers=node.kafka_bootstrap_servers, request_timeout_ms=10_000
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing]
                )
            except TopicAlreadyExistsError:
                pass  # a sibling process created it first
            logger.info("created topics %s", ", ".join(missing))
    finally:
        await admin.close()
