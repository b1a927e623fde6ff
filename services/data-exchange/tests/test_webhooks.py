"""Webhooks: signed per Standard Webhooks, retried with back-off while the receiver is down,
dead-lettered after the retry period, redelivered on request."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from standardwebhooks import Webhook

from tongban_exchange.main import create_app
from tongban_exchange.settings import ExchangeSettings
from tongban_exchange.testing import Tokens, WebhookReceiver, business_registered, grant
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import eventually, publish_events, running_app


async def test_a_receiver_that_was_down_gets_everything_once_per_id(
    exchange: httpx.AsyncClient,
    as_department: Tokens,
    node_settings: NodeSettings,
    receiver: WebhookReceiver,
) -> None:
    body = await grant(
        exchange,
        as_department("social-security"),
        fields=["uscc"],
        mode="webhook",
        url=receiver.url,
    )
    await receiver.stop()
    events = [business_registered() for _ in range(3)]

    await publish_events(node_settings, *events)
    failing = await eventually(
        lambda: _undelivered(exchange, as_department("social-security")),
        lambda rows: len(rows) == 3 and all(r["attempts"] >= 2 for r in rows),
    )
    lag = 'tongban_exchange_lag{dataset="gov.tongban.registration.business.registered.v1",'
    lag += 'department="social-security"} 3.0'
    assert lag in await eventually(lambda: _metrics(exchange), lambda text: lag in text)
    await receiver.start()
    await eventually(
        lambda: _undelivered(exchange, as_department("social-security")), lambda r: not r
    )

    hook = Webhook(body["webhook_secret"])
    unique = {
        headers["webhook-id"]: hook.verify(raw, headers) for headers, raw in receiver.received
    }
    assert set(unique) == {e.id for e in events}
    assert all(
        payload["data"] == {"uscc": e.data["uscc"]} for e in events for payload in [unique[e.id]]
    )
    assert all("Connect" in r["last_error"] for r in failing)


@pytest.fixture
async def impatient(
    exchange_settings: ExchangeSettings,
) -> AsyncIterator[httpx.AsyncClient]:
    """Data-exchange that gives up on a webhook after about a second."""
    settings = exchange_settings.model_copy(update={"webhook_retry_hours": 1 / 3600})
    async with running_app(create_app(settings)) as client:
        yield client


async def test_a_delivery_is_dead_lettered_after_the_retry_period_and_redelivered_on_request(
    impatient: httpx.AsyncClient,
    as_department: Tokens,
    node_settings: NodeSettings,
    receiver: WebhookReceiver,
) -> None:
    social = as_department("social-security")
    await grant(impatient, social, fields=["uscc"], mode="webhook", url=receiver.url)
    await receiver.stop()
    event = business_registered()

    await publish_events(node_settings, event)
    (dead,) = await eventually(
        lambda: _undelivered(impatient, social), lambda rows: rows and rows[0]["status"] == "dead"
    )
    await receiver.start()
    other = await impatient.post(
        f"/v1/deliveries/{dead['id']}/redeliver", headers=as_department("tax")
    )
    again = await impatient.post(f"/v1/deliveries/{dead['id']}/redeliver", headers=social)

    assert other.status_code == 404
    assert again.status_code == 202
    await eventually(lambda: _count(receiver), lambda n: n == 1)
    assert receiver.received[0][0]["webhook-id"] == event.id
    metrics = (await impatient.get("/metrics")).text
    assert (
        'tongban_exchange_dead_lettered_total{dataset="gov.tongban.registration.business.'
        'registered.v1",department="social-security"} 1.0'
    ) in (metrics)


async def _undelivered(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> list[dict[str, object]]:
    response = await client.get("/v1/deliveries/undelivered", headers=headers)
    rows: list[dict[str, object]] = response.json()
    return rows


async def _count(receiver: WebhookReceiver) -> int:
    return len(receiver.received)


async def _metrics(client: httpx.AsyncClient) -> str:
    return (await client.get("/metrics")).text
