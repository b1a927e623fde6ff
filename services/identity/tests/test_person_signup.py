"""Sign-up: a valid resident ID, sealed at rest, masked on the way out, unique by blind index."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tongban_identity.main import create_app
from tongban_identity.settings import IdentitySettings
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import EventProbe, running_app

RESIDENT_ID = "11010519491231002X"
PHONE = "13812345678"


@dataclass
class Identity:
    client: httpx.AsyncClient
    database: str


@pytest.fixture
async def identity(make_database, node_settings: NodeSettings) -> AsyncIterator[Identity]:  # type: ignore[no-untyped-def]
    url = await make_database("tongban_identity:migrations")
    settings = IdentitySettings(database_url=url, node=node_settings)
    async with running_app(create_app(settings)) as client:
        yield Identity(client, url)


def _signup(**overrides: str) -> dict[str, str]:
    body = {
        "resident_id": RESIDENT_ID,
        "name": "王小明",
        "phone": PHONE,
        "password": "correct horse battery staple",
    }
    body.update(overrides)
    return body


async def _persons_table(database: str) -> list[dict[str, object]]:
    engine = create_async_engine(database)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT * FROM persons"))
            return [dict(row._mapping) for row in rows]
    finally:
        await engine.dispose()


async def test_sign_up_returns_the_identifiers_masked_at_level_low(identity: Identity) -> None:
    response = await identity.client.post("/v1/persons", json=_signup())

    assert response.status_code == 201, response.text
    person = response.json()
    assert person["resident_id_masked"] == "110105********002X"
    assert person["phone_masked"] == "138****5678"
    assert person["loa"] == "low"
    assert RESIDENT_ID not in response.text
    assert PHONE not in response.text
    assert "password" not in response.text


async def test_identifiers_and_password_are_not_stored_in_the_clear(identity: Identity) -> None:
    await identity.client.post("/v1/persons", json=_signup())

    (row,) = await _persons_table(identity.database)
    stored = b"".join(
        value if isinstance(value, bytes) else str(value).encode() for value in row.values()
    )
    assert RESIDENT_ID.encode() not in stored
    assert PHONE.encode() not in stored
    assert b"correct horse" not in stored
    assert str(row["password_hash"]).startswith("$argon2id$v=19$m=19456,t=2,p=1$")


async def test_the_same_resident_id_cannot_sign_up_twice_whatever_its_case(
    identity: Identity,
) -> None:
    first = await identity.client.post("/v1/persons", json=_signup())
    again = await identity.client.post(
        "/v1/persons", json=_signup(resident_id=RESIDENT_ID.lower(), phone="13900000000")
    )

    assert first.status_code == 201
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert RESIDENT_ID not in again.text
    assert len(await _persons_table(identity.database)) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("resident_id", "110105194912310021"),  # wrong check character
        ("resident_id", "110105209912310027"),  # born in the future
        ("resident_id", "11010519490231002X"),  # 31 February
        ("phone", "12812345678"),
        ("password", "tiny-pw"),
    ],
)
async def test_invalid_fields_are_422_problems_that_do_not_echo_the_value(
    identity: Identity, field: str, value: str
) -> None:
    response = await identity.client.post("/v1/persons", json=_signup(**{field: value}))

    assert response.status_code == 422
    assert f"/{field}" in [e["pointer"] for e in response.json()["errors"]]
    assert value not in response.text
    assert await _persons_table(identity.database) == []


async def test_the_sign_up_event_carries_no_personal_data(
    identity: Identity, node_settings: NodeSettings
) -> None:
    await identity.client.post("/v1/persons", json=_signup())

    async with EventProbe(node_settings, "identity.events") as probe:
        events = await probe.collect(lambda seen: len(seen) >= 2)
    assert {e.type for e in events} == {
        "gov.tongban.identity.person.registered.v1",
        "gov.tongban.identity.security.signed_up.v1",
    }
    for event in events:
        raw = event.to_kafka().value.decode()
        for secret in (RESIDENT_ID, PHONE, "王小明", "002X"):
            assert secret not in raw
