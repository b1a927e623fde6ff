"""Helpers tests use to see what services put on Kafka."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tongban_kit.events import CloudEvent, load_catalogue
from tongban_kit.kafka import ensure_topics
from tongban_kit.settings import NodeSettings

__all__ = ["EventProbe", "assert_valid_event", "publish_events"]


def assert_valid_event(event: CloudEvent) -> None:
    """Fail unless the event's type is catalogued and its data matches the type's schema."""
    load_catalogue().validate(event)


class EventProbe:
    """Reads a node's logical topic from the start and collects the CloudEvents on it."""

    def __init__(self, node: NodeSettings, *logical_topics: str) -> None:
        self.node = node
        self.topics = [node.topic(t) for t in logical_topics]
        self.events: list[CloudEvent] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> Self:
        await ensure_topics(self.node, self.topics)
        self._consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self.node.kafka_bootstrap_servers,
            group_id=None,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.node.kafka_fetch_max_wait_ms,
            metadata_max_age_ms=2_000,
        )
        await self._consumer.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def collect(
        self, until: Callable[[list[CloudEvent]], bool], *, timeout: float = 15.0
    ) -> list[CloudEvent]:
        """Poll until ``until(events)`` holds or ``timeout`` passes; return the events seen."""
        assert self._consumer is not None, "use EventProbe as an async context manager"
        deadline = time.monotonic() + timeout
        while not until(self.events) and time.monotonic() < deadline:
            batches = await self._consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for r in records:
                    self.events.append(CloudEvent.from_kafka(r.key, r.value, r.headers))
            await asyncio.sleep(0)
        return self.events

    async def settle(self, seconds: float = 1.0) -> list[CloudEvent]:
        """Collect for a while (to be sure that nothing more arrives)."""
        return await self.collect(lambda _: False, timeout=seconds)


async def publish_events(node: NodeSettings, *events: CloudEvent, times: int = 1) -> None:
    """Put events on their topics as a producing service would (``times`` to redeliver)."""
    producer = AIOKafkaProducer(bootstrap_servers=node.kafka_bootstrap_servers)
    await producer.start()
    try:
        for event in events:
            record = event.to_kafka()
            topic = node.topic(record.topic)
            await ensure_topics(node, [topic])
            for _ in range(times):
                await producer.send_and_wait(
                    topic, record.value, key=record.key, headers=record.headers
                )
    finally:
        await producer.stop()
