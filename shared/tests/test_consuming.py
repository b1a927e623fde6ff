"""A consumer that stops consuming without an error is restarted and catches up."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from tongban_kit import consuming
from tongban_kit.consuming import ConsumerLoop
from tongban_kit.kafka import ensure_topics
from tongban_kit.observability.metrics import ServiceMetrics
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import eventually


async def test_a_consumer_whose_fetch_is_stuck_while_events_wait_is_restarted(
    node_settings: NodeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = node_settings.topic(f"testkit.stuck-{uuid.uuid4().hex[:6]}")
    await ensure_topics(node_settings, [topic])
    producer = AIOKafkaProducer(bootstrap_servers=node_settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for n in range(5):
            await producer.send_and_wait(topic, f"event {n}".encode(), key=str(n).encode())
    finally:
        await producer.stop()

    built: list[AIOKafkaConsumer] = []
    real_build = consuming.build_consumer

    def build(*args: Any, **kwargs: Any) -> AIOKafkaConsumer:
        consumer = real_build(*args, **kwargs)
        if not built:  # the first client joins its group but its fetches never return anything

            async def stuck(*_: Any, **__: Any) -> dict[Any, Any]:
                await asyncio.sleep(0.2)
                return {}

            consumer.getmany = stuck  # type: ignore[method-assign]
        built.append(consumer)
        return consumer

    monkeypatch.setattr(consuming, "build_consumer", build)
    seen: list[bytes] = []

    async def count() -> int:
        return len(seen)

    async def handle(records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        seen.extend(r.value for r in records)

    metrics = ServiceMetrics()
    loop = ConsumerLoop(
        name="testkit.stuck",
        node=node_settings,
        topics=[topic],
        group_id=f"{topic}.group",
        handle=handle,
        metrics=metrics,
        stall_after_s=2.0,
    )
    task = asyncio.create_task(loop.run())
    try:
        await eventually(count, lambda n: n >= 5, timeout=60)
    finally:
        loop.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    assert sorted(seen) == [f"event {n}".encode() for n in range(5)]
    assert len(built) >= 2
    restarts = metrics.registry.get_sample_value(
        "tongban_consumer_restarts_total", {"consumer": "testkit.stuck", "reason": "stuck"}
    )
    assert restarts is not None
    assert restarts >= 1
