"""Fresh deliveries go from routing to the dispatcher in memory, leased: made once, at once;
and if the process that routed them dies before making them, made once the lease runs out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from tongban_exchange.main import create_app
from tongban_exchange.models import Delivery
from tongban_exchange.settings import ExchangeSettings
from tongban_exchange.testing import Tokens, WebhookReceiver, business_registered, grant
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import eventually, publish_events, running_app

LEASE_S = 3.0


@pytest.fixture
async def app(exchange_settings: ExchangeSettings) -> FastAPI:
    settings = exchange_settings.model_copy(update={"handoff_lease_s": LEASE_S})
    return create_app(settings)


@pytest.fixture
async def exchange(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(app) as client:
        await eventually(lambda: asyncio.sleep(0, app.state.exchange.dispatcher))
        yield client


@pytest.fixture
async def social_security(
    exchange: httpx.AsyncClient, as_department: Tokens, receiver: WebhookReceiver
) -> None:
    """Social security's webhook grant of business registrations."""
    social = as_department("social-security")
    await grant(exchange, social, fields=["uscc"], mode="webhook", url=receiver.url)


async def _rows(database: str) -> list[Delivery]:
    engine = create_async_engine(database)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(select(Delivery).order_by(Delivery.id))
            return list(result.all())  # type: ignore[arg-type]
    finally:
        await engine.dispose()


@pytest.mark.usefixtures("social_security")
async def test_fresh_webhook_deliveries_are_made_at_once_and_only_once(
    node_settings: NodeSettings,
    receiver: WebhookReceiver,
    database: str,
) -> None:
    events = [business_registered() for _ in range(20)]

    await publish_events(node_settings, *events)
    await eventually(lambda: asyncio.sleep(0, receiver.received), lambda r: len(r) >= 20)
    await asyncio.sleep(LEASE_S + 1.0)  # past the lease: a poller would send them again now

    ids = [headers["webhook-id"] for headers, _ in receiver.received]
    assert sorted(ids) == sorted(e.id for e in events)  # each once
    rows = await _rows(database)
    assert {(r.status, r.attempts) for r in rows} == {("delivered", 1)}
    # Sent from memory as soon as they were stored, not polled once the lease ran out.
    assert all((r.delivered_at - r.created_at).total_seconds() < LEASE_S - 1 for r in rows)


@pytest.mark.usefixtures("social_security")
async def test_deliveries_a_dead_process_leased_are_made_when_the_lease_runs_out(
    app: FastAPI,
    node_settings: NodeSettings,
    receiver: WebhookReceiver,
    database: str,
) -> None:
    dispatcher = app.state.exchange.dispatcher
    offered = dispatcher.offer
    # The routing process "dies" between committing its deliveries and making them: what it
    # leased reaches no dispatcher's memory.
    dispatcher.offer = lambda attempts: None
    event = business_registered()

    await publish_events(node_settings, event)
    (row,) = await eventually(lambda: _rows(database), lambda rows: len(rows) == 1)
    assert row.status == "pending"
    dispatcher.offer = offered
    await eventually(lambda: asyncio.sleep(0, receiver.received), lambda r: len(r) >= 1)

    assert [headers["webhook-id"] for headers, _ in receiver.received] == [event.id]
    (row,) = await eventually(lambda: _rows(database), lambda rows: rows[0].status != "pending")
    assert (row.status, row.attempts) == ("delivered", 1)
    # Made by the poller, and not before the lease ran out.
    assert (row.delivered_at - row.created_at).total_seconds() >= LEASE_S - 0.5
