"""Kafka clients configured one way for the whole platform."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from tongban_kit.settings import NodeSettings

__all__ = ["TopicAdmin", "build_consumer", "build_producer", "ensure_topics"]

logger = logging.getLogger("tongban.kafka")

#: Largest record batch a producer builds per partition (under the broker's 1 MiB default).
MAX_BATCH_BYTES = 512 * 1024


def build_producer(node: NodeSettings, *, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=node.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=node.kafka_enable_idempotence,
        linger_ms=2,
        # aiokafka keeps one request in flight per broker, carrying one batch per partition:
        # at the default 16 KiB a batch, 2,000 deliveries a second needed ~20 round trips a
        # second and queued behind them (bench/exchange_routing.py).
        max_batch_size=MAX_BATCH_BYTES,
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
        session_timeout_ms=node.kafka_session_timeout_ms,
        heartbeat_interval_ms=max(node.kafka_session_timeout_ms // 4, 250),
    )


class TopicAdmin:
    """A long-lived admin client that creates topics and says which ones exist."""

    def __init__(self, node: NodeSettings, *, partitions: int = 3) -> None:
        self.node = node
        self.partitions = partitions
        self._admin = AIOKafkaAdminClient(
            bootstrap_servers=node.kafka_bootstrap_servers, request_timeout_ms=5_000
        )

    async def start(self) -> None:
        await asyncio.wait_for(self._admin.start(), 10.0)

    async def close(self) -> None:
        await self._admin.close()

    async def missing(self, topics: Iterable[str]) -> set[str]:
        """The topics the broker does not list (a full metadata round trip)."""
        return set(topics) - set(await self._admin.list_topics())

    async def ensure(self, topics: Iterable[str]) -> None:
        """Create the topics that do not exist yet."""
        missing = sorted(await self.missing(topics))
        if not missing:
            return
        try:
            await self._admin.create_topics(
                [NewTopic(t, num_partitions=self.partitions, replication_factor=1) for t in missing]
            )
        except TopicAlreadyExistsError:
            pass  # a sibling process created it first
        logger.info("created topics %s", ", ".join(missing))


async def ensure_topics(node: NodeSettings, topics: Iterable[str]) -> None:
    """Create the topics that do not exist yet (each consumer does so on start)."""
    wanted = set(topics)
    if not wanted:
        return
    admin = TopicAdmin(node)
    try:
        await admin.start()
        await admin.ensure(wanted)
    finally:
        await admin.close()
