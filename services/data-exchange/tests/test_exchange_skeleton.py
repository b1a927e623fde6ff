"""Data-exchange's skeleton: acknowledgements are evented; business records come from events,
validated against the catalogue at the border."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from tongban_exchange.main import create_app
from tongban_exchange.settings import ExchangeSettings
from tongban_kit.auth.testing import LocalIssuer
from tongban_kit.events import CloudEvent
from tongban_kit.outbox import dead_letters
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import (
    EventProbe,
    assert_valid_event,
    eventually,
    publish_events,
    running_app,
)

USCC = "91440305000000019K"


@pytest.fixture
async def database(make_database) -> str:  # type: ignore[no-untyped-def]
    url: str = await make_database("tongban_exchange:migrations")
    return url


def department_token(issuer: LocalIssuer, code: str = "tax", **claims: object) -> str:
    """A client-credentials token as identity issues it to a department."""
    client_id = f"dept-{code}-0a1b2c3d4e5f"
    values: dict[str, object] = {
        "sub": client_id,
        "client_id": client_id,
        "department": code,
        "department_name": "国家税务总局深圳市税务局",
        "scope": "exchange:acknowledge",
    }
    values.update(claims)
    return issuer.mint(drop=("acr", "amr", "auth_time"), **values)


@pytest.fixture
async def client(
    database: str, node_settings: NodeSettings, token_issuer: LocalIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """Data-exchange, called by the tax department."""
    settings = ExchangeSettings(database_url=database, node=node_settings)
    async with running_app(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {department_token(token_issuer)}"
        yield client


async def _count(database: str, table: str) -> int:
    engine = create_async_engine(database)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)  # noqa: S608
    finally:
        await engine.dispose()


def _registered(**overrides: object) -> CloudEvent:
    data = {
        "business_id": "6f1c1e57-5f6b-4a43-9b11-111111111111",
        "uscc": USCC,
        "name": "深圳市腾飞科技有限公司",
        "division_code": "440305",
        "registered_at": "2026-11-26T10:00:00+00:00",
        "legal_representative": {"name": "张三", "resident_id": "11010519491231002X"},
    }
    data.update(overrides)
    return CloudEvent.new(
        "gov.tongban.registration.business.registered.v1",
        source="/nodes/440300/registration",
        subject=USCC,
        data=data,
    )


async def test_an_acknowledgement_is_recorded_with_one_valid_event(
    client: httpx.AsyncClient, node_settings: NodeSettings
) -> None:
    response = await client.post("/v1/acknowledgements", json={"uscc": USCC, "reference": "T-1"})

    assert response.status_code == 201, response.text
    async with EventProbe(node_settings, "exchange.events") as probe:
        await probe.collect(lambda seen: len(seen) >= 1)
        events = await probe.settle(0.5)
    assert len(events) == 1
    assert_valid_event(events[0])
    assert events[0].data["reference"] == "T-1"
    assert (events[0].data["department"], response.json()["department"]) == ("tax", "tax")


@pytest.mark.parametrize(
    ("who", "status"),
    [("person", 403), ("no scope", 403), ("anonymous", 401), ("claims a department", 422)],
)
async def test_only_departments_with_the_scope_acknowledge_and_only_as_themselves(
    client: httpx.AsyncClient, database: str, token_issuer: LocalIssuer, who: str, status: int
) -> None:
    body: dict[str, str] = {"uscc": USCC, "reference": "T-9"}
    token = department_token(token_issuer)
    if who == "person":
        token = token_issuer.mint(scope="exchange:acknowledge")
    elif who == "no scope":
        token = department_token(token_issuer, scope="exchange:query")
    elif who == "claims a department":
        body["department"] = "customs"
    headers = {"Authorization": "" if who == "anonymous" else f"Bearer {token}"}

    response = await client.post("/v1/acknowledgements", json=body, headers=headers)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert await _count(database, "acknowledgements") == 0


async def test_an_acknowledgement_for_an_invalid_uscc_is_refused(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/acknowledgements",
        json={"uscc": "91440305000000019A", "reference": "T-1"},
    )

    assert response.status_code == 400
    assert "check" in response.json()["detail"]


async def test_registered_businesses_become_records_and_invalid_events_dead_letters(
    client: httpx.AsyncClient, node_settings: NodeSettings, database: str
) -> None:
    invalid = _registered(division_code="44")  # breaks the schema
    valid = _registered()
    await publish_events(node_settings, invalid, valid)

    response = await eventually(
        lambda: client.get(f"/v1/records/businesses/{USCC}"), lambda r: r.status_code == 200
    )
    assert response.json()["division_code"] == "440305"
    engine = create_async_engine(database)
    async with engine.connect() as conn:
        letters = (await conn.execute(select(dead_letters.c.event_id, dead_letters.c.reason))).all()
    await engine.dispose()
    assert [row.event_id for row in letters] == [invalid.id]
    assert "/division_code" in letters[0].reason
