"""The transactional outbox: what commits is published once; what fails is never published."""

from __future__ import annotations

import asyncio

import pytest
from kit_app import KitService, new_title, notes, outbox
from sqlalchemy import select, update

from tongban_kit.observability.metrics import ServiceMetrics
from tongban_kit.outbox import OutboxRelay, replay_from
from tongban_kit.testing import EventProbe, eventually

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def test_a_committed_write_produces_exactly_one_event_with_cloudevents_headers(
    kit_service: KitService,
) -> None:
    title = new_title()
    response = await kit_service.client.post(
        "/notes", json={"title": title}, headers={"traceparent": TRACEPARENT}
    )
    assert response.status_code == 201
    assert response.headers["traceparent"].split("-")[1] == TRACE_ID

    async with EventProbe(kit_service.node, "testkit.events") as probe:
        events = await probe.collect(lambda seen: len(seen) >= 1)
        events = await probe.settle(1.0)

    assert [e.subject for e in events] == [title]
    event = events[0]
    assert event.type == "gov.tongban.testkit.note.created.v1"
    assert event.source == f"/nodes/{kit_service.node.node_code}/testkit"
    assert event.specversion == "1.0"
    assert event.traceparent is not None
    assert event.traceparent.split("-")[1] == TRACE_ID


async def test_a_write_that_fails_on_a_constraint_produces_no_event(
    kit_service: KitService,
) -> None:
    title = new_title()
    first = await kit_service.client.post("/notes", json={"title": title})
    again = await kit_service.client.post("/notes", json={"title": title})

    assert first.status_code == 201
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert await kit_service.count(outbox) == 1
    async with EventProbe(kit_service.node, "testkit.events") as probe:
        events = await probe.collect(lambda seen: len(seen) >= 2, timeout=3.0)
    assert len(events) == 1


async def test_a_relay_asked_to_stop_returns_without_being_cancelled(
    kit_service: KitService,
) -> None:
    """Services stop their relay, then cancel it: on Python 3.11 a cancellation can be lost
    inside ``asyncio.wait_for``, and a relay left polling held each shutdown for 15 s."""
    relay = OutboxRelay(
        engine=kit_service.engine,
        node=kit_service.node,
        metrics=ServiceMetrics(),
        client_id="stopping-relay",
    )
    running = asyncio.create_task(relay.run())

    async def connected() -> bool:
        return relay.connected

    await eventually(connected)
    relay.stop()
    done, _ = await asyncio.wait([running], timeout=2.0)
    running.cancel()  # leaves no relay behind if it did not stop

    assert done == {running}
    assert not relay.connected


@pytest.mark.embedded_broker
async def test_writes_succeed_while_the_broker_is_down_and_arrive_after_it_returns_empty(
    kit_service: KitService,
    tongban_broker,  # type: ignore[no-untyped-def]
) -> None:
    if not tongban_broker.restartable:
        pytest.skip("needs the embedded broker, which the tests can stop")
    before = new_title()
    assert (await kit_service.client.post("/notes", json={"title": before})).status_code == 201
    await _wait_published(kit_service, 1)

    await asyncio.to_thread(tongban_broker.stop)
    try:
        titles = [new_title() for _ in range(20)]
        for title in titles:
            response = await kit_service.client.post("/notes", json={"title": title})
            assert response.status_code == 201
        await asyncio.sleep(1.0)  # the relay tries, fails and backs off meanwhile
    finally:
        await asyncio.to_thread(tongban_broker.start)  # memory storage: it comes back empty

    async with EventProbe(kit_service.node, "testkit.events") as probe:
        events = await probe.collect(
            lambda seen: set(titles) <= {e.subject for e in seen}, timeout=30.0
        )
    assert set(titles) <= {e.subject for e in events}
    assert await kit_service.count(notes) == 21


async def test_replay_publishes_retained_events_again(kit_service: KitService) -> None:
    titles = [new_title() for _ in range(3)]
    for title in titles:
        await kit_service.client.post("/notes", json={"title": title})
    await _wait_published(kit_service, 3)
    async with kit_service.engine.connect() as conn:
        second_seq = (await conn.scalars(select(outbox.c.seq).order_by(outbox.c.seq))).all()[1]

    queued = await replay_from(kit_service.engine, second_seq)

    assert queued == 2
    async with EventProbe(kit_service.node, "testkit.events") as probe:
        events = await probe.collect(lambda seen: len(seen) >= 5)
    assert sorted(e.subject for e in events) == sorted([*titles, *titles[1:]])


async def test_published_rows_are_kept_for_the_retention_window_then_purged(
    kit_service: KitService,
) -> None:
    for _ in range(2):
        await kit_service.client.post("/notes", json={"title": new_title()})
    await _wait_published(kit_service, 2)
    relay = kit_service.app.state.relay
    assert await relay.purge_published() == 0  # inside the window: kept for replay

    async with kit_service.engine.begin() as conn:
        await conn.execute(update(outbox).values(published_at=outbox.c.published_at - _days(30)))
    assert await relay.purge_published() == 2
    assert await kit_service.count(outbox) == 0


def _days(n: int):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    return timedelta(days=n)


async def _wait_published(service: KitService, count: int, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        async with service.engine.connect() as conn:
            published = (
                await conn.scalars(select(outbox.c.seq).where(outbox.c.published_at.is_not(None)))
            ).all()
        if len(published) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} outbox rows were published in {timeout}s")


@pytest.mark.embedded_broker
async def test_events_published_before_the_broker_restarted_empty_are_published_again(
    kit_service: KitService,
    tongban_broker,  # type: ignore[no-untyped-def]
) -> None:
    """The broker acknowledged them, then lost them: the relay notices and sends them again."""
    if not tongban_broker.restartable:
        pytest.skip("needs the embedded broker, which the tests can stop")
    titles = [new_title() for _ in range(3)]
    for title in titles:
        assert (await kit_service.client.post("/notes", json={"title": title})).status_code == 201
    await _wait_published(kit_service, 3)

    await asyncio.to_thread(tongban_broker.stop)
    await asyncio.to_thread(tongban_broker.start)  # memory storage: it comes back empty

    async with EventProbe(kit_service.node, "testkit.events") as probe:
        events = await probe.collect(
            lambda seen: set(titles) <= {e.subject for e in seen}, timeout=30.0
        )
    assert set(titles) <= {e.subject for e in events}
    republished = kit_service.app.state.metrics.registry.get_sample_value(
        "tongban_outbox_republished_events_total"
    )
    assert republished is not None
    assert republished >= 3
