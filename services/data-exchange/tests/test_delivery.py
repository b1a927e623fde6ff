"""Routing and delivery: each department gets only its granted fields, the same event id in
every mode; nothing without a grant, nothing before approval, nothing after revocation."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from standardwebhooks import Webhook

from tongban_exchange.catalogue.asyncapi import delivery_topic
from tongban_exchange.testing import (
    RESIDENT_ID,
    USCC,
    Tokens,
    WebhookReceiver,
    business_registered,
    grant,
)
from tongban_kit.events import CloudEvent
from tongban_kit.kafka import build_consumer, ensure_topics
from tongban_kit.outbox import inbox
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import eventually, publish_events

PERSON_REGISTERED = "gov.tongban.identity.person.registered.v1"


async def consume_as(
    node: NodeSettings, department: str, count: int, timeout: float = 20.0
) -> list[CloudEvent]:
    """Read the department's topic with the department's own consumer group."""
    topic = node.topic(delivery_topic(department))
    await ensure_topics(node, [topic])
    consumer = build_consumer(node, topic, group_id=f"{department}-dept-{uuid.uuid4().hex[:6]}")
    await consumer.start()
    events: list[CloudEvent] = []
    try:

        async def poll() -> list[CloudEvent]:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                events.extend(CloudEvent.from_kafka(r.key, r.value, r.headers) for r in records)
            return events

        await eventually(poll, lambda seen: len(seen) >= count, timeout=timeout)
    finally:
        await consumer.stop()
    return events


async def pull(
    client: httpx.AsyncClient, headers: dict[str, str], after: int = 0, wait: float = 10
) -> dict[str, Any]:
    response = await client.get(
        "/v1/deliveries", params={"after": after, "wait": wait}, headers=headers
    )
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_three_departments_receive_their_fields_with_one_event_id(
    exchange: httpx.AsyncClient,
    as_department: Tokens,
    node_settings: NodeSettings,
    receiver: WebhookReceiver,
) -> None:
    await grant(exchange, as_department("tax"), fields=["uscc", "name"], mode="kafka")
    social = await grant(
        exchange,
        as_department("social-security"),
        fields=["uscc", "legal_representative"],
        mode="webhook",
        url=receiver.url,
    )
    await grant(exchange, as_department("statistics"), fields=["uscc", "division_code"])
    event = business_registered()

    await publish_events(node_settings, event)

    (tax,) = await consume_as(node_settings, "tax", 1)
    await eventually(lambda: _received(receiver), lambda n: n >= 1)
    statistics = await pull(exchange, as_department("statistics"))
    headers, body = receiver.received[0]
    payload = Webhook(social["webhook_secret"]).verify(body, headers)
    assert tax.id == headers["webhook-id"] == statistics["events"][0]["id"] == event.id
    assert tax.data == {"uscc": USCC, "name": "深圳市腾飞科技有限公司"}
    assert statistics["events"][0]["data"] == {"uscc": USCC, "division_code": "440305"}
    # No pseudonym can be made (not enrolled at identity): the identifier is withheld.
    assert payload["data"] == {"uscc": USCC, "legal_representative": {"name": "张三"}}
    assert RESIDENT_ID not in body.decode()
    nothing = await pull(exchange, as_department("customs"), wait=0)
    assert nothing == {"events": [], "next": 0}
    metrics = (await exchange.get("/metrics")).text
    for department, mode in (
        ("tax", "kafka"),
        ("social-security", "webhook"),
        ("statistics", "pull"),
    ):
        labels = f'dataset="{event.type}",department="{department}"'
        assert f'tongban_exchange_delivered_total{{{labels},mode="{mode}"}} 1.0' in metrics
        assert f"tongban_exchange_delivery_latency_seconds_count{{{labels}}} 1.0" in metrics


async def _received(receiver: WebhookReceiver) -> int:
    return len(receiver.received)


async def test_a_grant_that_allows_personal_identifiers_gets_them(
    exchange: httpx.AsyncClient, as_department: Tokens, node_settings: NodeSettings
) -> None:
    await grant(exchange, as_department("police"), fields=["legal_representative"], personal=True)

    await publish_events(node_settings, business_registered())

    page = await pull(exchange, as_department("police"))
    assert page["events"][0]["data"]["legal_representative"]["resident_id"] == RESIDENT_ID


async def test_a_conditional_dataset_delivers_nothing_until_the_owner_approves(
    exchange: httpx.AsyncClient, as_department: Tokens, node_settings: NodeSettings, database: str
) -> None:
    asked = await grant(
        exchange, as_department("tax"), dataset=PERSON_REGISTERED, fields=["person_id"]
    )
    before, after = _person(), _person()

    await publish_events(node_settings, before)
    await _routed(database, before)
    assert (await pull(exchange, as_department("tax"), wait=0))["events"] == []
    await exchange.post(
        f"/v1/grants/{asked['id']}/approve", json={}, headers=as_department("public-security")
    )
    await publish_events(node_settings, after)

    page = await pull(exchange, as_department("tax"))
    assert [e["id"] for e in page["events"]] == [after.id]


async def test_revocation_stops_delivery(
    exchange: httpx.AsyncClient, as_department: Tokens, node_settings: NodeSettings, database: str
) -> None:
    revoked = await grant(exchange, as_department("tax"), fields=["uscc"])
    first, second = business_registered(), business_registered()
    await publish_events(node_settings, first)
    assert [e["id"] for e in (await pull(exchange, as_department("tax")))["events"]] == [first.id]

    await exchange.post(f"/v1/grants/{revoked['id']}/revoke", headers=as_department("tax"))
    await publish_events(node_settings, second)
    await _routed(database, second)

    page = await pull(exchange, as_department("tax"), wait=0)
    assert [e["id"] for e in page["events"]] == [first.id]


async def test_an_invalid_event_is_dead_lettered_and_counted(
    exchange: httpx.AsyncClient, as_department: Tokens, node_settings: NodeSettings
) -> None:
    await grant(exchange, as_department("tax"), fields=["uscc"])
    invalid = business_registered(division_code="44")
    valid = business_registered()

    await publish_events(node_settings, invalid, valid)

    page = await pull(exchange, as_department("tax"))
    assert [e["id"] for e in page["events"]] == [valid.id]
    metrics = (await exchange.get("/metrics")).text
    assert (
        'tongban_exchange_dead_lettered_total{dataset="gov.tongban.registration.business.'
        'registered.v1",department="-"} 1.0'
    ) in metrics


def _person() -> CloudEvent:
    person_id = str(uuid.uuid4())
    return CloudEvent.new(
        PERSON_REGISTERED,
        source="/nodes/440300/identity",
        subject=person_id,
        data={"person_id": person_id, "node": "440300", "registered_at": "2026-11-26T10:00:00Z"},
    )


async def _routed(database: str, event: CloudEvent) -> None:
    """Wait until routing has handled ``event`` (its id is in the routing consumer's inbox)."""
    engine = create_async_engine(database)
    try:

        async def handled() -> bool:
            async with engine.connect() as conn:
                found = await conn.scalar(
                    select(inbox.c.event_id).where(
                        inbox.c.consumer == "exchange.routing", inbox.c.event_id == event.id
                    )
                )
            return found is not None

        await eventually(handled)
    finally:
        await engine.dispose()
