"""Idempotent consumers: one effect per event; a poison event is dead-lettered, not fatal."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from kit_app import NOTE_CREATED, KitService, applied
from sqlalchemy import select

from tongban_kit.events import CloudEvent
from tongban_kit.kafka import ensure_topics
from tongban_kit.outbox import dead_letters
from tongban_kit.testing import eventually


def _note(title: str) -> CloudEvent:
    return CloudEvent.new(
        NOTE_CREATED, source="/nodes/440300/testkit", subject=title, data={"title": title}
    )


async def _produce(
    service: KitService, *records: tuple[bytes, bytes, list[tuple[str, bytes]]]
) -> None:
    topic = service.node.topic("testkit.events")
    await ensure_topics(service.node, [topic])
    producer = AIOKafkaProducer(bootstrap_servers=service.node.kafka_bootstrap_servers)
    await producer.start()
    try:
        for _key, value, headers in records:
            # One key: one partition, so the records arrive in the order sent.
            await producer.send_and_wait(topic, value, key=b"same-key", headers=headers)
    finally:
        await producer.stop()


def _record(event: CloudEvent) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    kafka = event.to_kafka()
    return kafka.key, kafka.value, kafka.headers


async def test_an_event_delivered_twice_is_applied_once(kit_service: KitService) -> None:
    event = _note("twice")
    marker = _note("after")

    await _produce(kit_service, _record(event), _record(event), _record(marker))
    await eventually(lambda: _applied_ids(kit_service, marker.id))

    async with kit_service.engine.connect() as conn:
        ids = (await conn.scalars(select(applied.c.event_id))).all()
    assert sorted(ids) == sorted([event.id, marker.id])


async def test_a_poison_event_is_dead_lettered_and_the_next_one_still_applies(
    kit_service: KitService,
) -> None:
    poison = _note("poison")  # the handler raises for this title
    garbage = (b"k", b"not json at all", [("ce_type", NOTE_CREATED.encode())])
    good = _note("good")

    await _produce(kit_service, _record(poison), garbage, _record(good))
    await eventually(lambda: _applied_ids(kit_service, good.id))

    async with kit_service.engine.connect() as conn:
        letters = (await conn.execute(select(dead_letters.c.event_id, dead_letters.c.reason))).all()
        ids = (await conn.scalars(select(applied.c.event_id))).all()
    assert ids == [good.id]
    reasons = {row.event_id: row.reason for row in letters}
    assert len(letters) == 2
    assert "this note cannot be applied" in reasons[poison.id]
    assert any("invalid event" in reason for reason in reasons.values())


async def test_a_dead_lettered_event_redelivered_is_not_dead_lettered_again(
    kit_service: KitService,
) -> None:
    poison = _note("poison")
    marker = _note("marker")

    await _produce(kit_service, _record(poison), _record(poison), _record(marker))
    await eventually(lambda: _applied_ids(kit_service, marker.id))

    assert await kit_service.count(dead_letters) == 1


async def _applied_ids(service: KitService, event_id: str) -> bool:
    async with service.engine.connect() as conn:
        found = await conn.scalar(select(applied.c.event_id).where(applied.c.event_id == event_id))
    return found is not None
