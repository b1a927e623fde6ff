"""Registration's skeleton: a registration commits with its event; a clash commits nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from tongban_kit.auth.testing import LocalIssuer
from tongban_kit.events import CloudEvent
from tongban_kit.identifiers import validate_uscc
from tongban_kit.outbox import outbox
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import (
    EventProbe,
    assert_valid_event,
    eventually,
    publish_events,
    running_app,
)
from tongban_registration.main import create_app
from tongban_registration.settings import RegistrationSettings

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
async def database(make_database) -> str:  # type: ignore[no-untyped-def]
    url: str = await make_database("tongban_registration:migrations")
    return url


@pytest.fixture
async def client(
    database: str, node_settings: NodeSettings, token_issuer: LocalIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """Registration, called by a signed-in person."""
    settings = RegistrationSettings(database_url=database, node=node_settings)
    async with running_app(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {token_issuer.mint()}"
        yield client


async def _outbox_rows(database: str) -> int:
    engine = create_async_engine(database)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(outbox)) or 0)
    finally:
        await engine.dispose()


async def test_registering_a_business_issues_a_uscc_and_one_valid_event(
    client: httpx.AsyncClient, node_settings: NodeSettings
) -> None:
    response = await client.post(
        "/v1/businesses",
        json={"name": "深圳市腾飞科技有限公司", "division_code": "440305"},
        headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
    )

    assert response.status_code == 201, response.text
    uscc = response.json()["uscc"]
    assert validate_uscc(uscc) == uscc
    assert uscc[2:8] == "440305"
    async with EventProbe(node_settings, "registration.events") as probe:
        await probe.collect(lambda seen: len(seen) >= 1)
        events: list[CloudEvent] = await probe.settle(0.5)
    assert len(events) == 1
    event = events[0]
    assert_valid_event(event)
    assert (event.subject, event.data["uscc"]) == (uscc, uscc)
    assert event.traceparent
    assert event.traceparent.split("-")[1] == TRACE_ID


async def test_registering_needs_a_token_of_this_node_and_writes_nothing_without_one(
    client: httpx.AsyncClient, database: str, token_issuer: LocalIssuer
) -> None:
    body = {"name": "深圳市无证科技有限公司", "division_code": "440305"}
    anonymous = await client.post("/v1/businesses", json=body, headers={"Authorization": ""})
    foreign = await client.post(
        "/v1/businesses",
        json=body,
        headers={"Authorization": f"Bearer {token_issuer.mint(aud='tongban:310000')}"},
    )

    assert (anonymous.status_code, foreign.status_code) == (401, 401)
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert await _outbox_rows(database) == 0


async def test_the_same_name_again_is_a_409_naming_it_and_writes_no_event(
    client: httpx.AsyncClient, database: str
) -> None:
    first = await client.post(
        "/v1/businesses", json={"name": "广州通办有限公司", "division_code": "440305"}
    )
    # Equal after width and case folding: full-width letters, extra spaces.
    clash = await client.post(
        "/v1/businesses", json={"name": " 广州通办 有限公司", "division_code": "440303"}
    )

    assert first.status_code == 201
    assert clash.status_code == 409
    assert clash.headers["content-type"] == "application/problem+json"
    assert clash.json()["conflicting_name"] == " 广州通办 有限公司".strip()
    assert await _outbox_rows(database) == 1


@pytest.mark.parametrize(
    ("division_code", "status"),
    [("310101", 400), ("440399", 201), ("12", 422), ("100000", 400)],
)
async def test_the_division_code_must_be_inside_this_node(
    client: httpx.AsyncClient, division_code: str, status: int
) -> None:
    response = await client.post(
        "/v1/businesses", json={"name": f"名称{division_code}", "division_code": division_code}
    )

    assert response.status_code == status, response.text


async def test_an_acknowledgement_event_reaches_the_business(
    client: httpx.AsyncClient, node_settings: NodeSettings
) -> None:
    created = await client.post(
        "/v1/businesses", json={"name": "深圳市确认测试有限公司", "division_code": "440305"}
    )
    uscc = created.json()["uscc"]
    ack = CloudEvent.new(
        "gov.tongban.exchange.acknowledgement.recorded.v1",
        source="/nodes/440300/exchange",
        subject=uscc,
        data={
            "acknowledgement_id": "0b9f8a54-3d9c-4e8e-9a76-5d5d8f0e7a11",
            "uscc": uscc,
            "department": "tax",
            "reference": "SZ-TAX-42",
            "recorded_at": "2026-11-26T10:00:00+00:00",
        },
    )
    assert_valid_event(ack)
    await publish_events(node_settings, ack, times=2)  # delivered twice, applied once

    async def business() -> dict[str, Any]:
        return dict((await client.get(f"/v1/businesses/{uscc}")).json())

    await eventually(business, lambda b: bool(b["acknowledgements"]))
    await asyncio.sleep(0.5)  # a second application of the redelivery would show by now
    assert [a["reference"] for a in (await business())["acknowledgements"]] == ["SZ-TAX-42"]
