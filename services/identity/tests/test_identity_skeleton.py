"""Identity's skeleton: sign-up commits with its event; legal persons come from events."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tongban_identity.main import create_app
from tongban_identity.sessions.testing import resident_id
from tongban_identity.settings import IdentitySettings
from tongban_identity.signatures.testing import mint_token
from tongban_kit.events import CloudEvent
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import (
    EventProbe,
    assert_valid_event,
    eventually,
    publish_events,
    running_app,
)


@pytest.fixture
async def client(make_database, node_settings: NodeSettings) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    url = await make_database("tongban_identity:migrations")
    settings = IdentitySettings(database_url=url, node=node_settings)
    async with running_app(create_app(settings)) as client:
        yield client


async def test_a_person_signs_up_and_one_valid_event_says_so(
    client: httpx.AsyncClient, node_settings: NodeSettings
) -> None:
    response = await client.post(
        "/v1/persons",
        json={
            "resident_id": "11010519491231002X",
            "name": "李伟",
            "phone": "13812345678",
            "password": "correct horse battery staple",
        },
    )

    assert response.status_code == 201, response.text
    person = response.json()
    app = client._transport.app  # type: ignore[attr-defined]
    own = await mint_token(app, subject=person["id"], acr="low")
    neighbour = await client.post(
        "/v1/persons",
        json={
            "resident_id": resident_id(3),
            "name": "王芳",
            "phone": "13812345679",
            "password": "another horse battery staple",
        },
    )
    other = await mint_token(app, subject=neighbour.json()["id"], acr="low")
    operator = await mint_token(app, "tongban:admin", subject="operator-1")
    url = f"/v1/persons/{person['id']}"

    def reading(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    assert (await client.get(url, headers=reading(own))).json()["name"] == "李伟"
    assert (await client.get(url, headers=reading(operator))).status_code == 200
    assert (await client.get(url, headers=reading(other))).status_code == 404
    assert (await client.get(url)).status_code == 401
    async with EventProbe(node_settings, "identity.events") as probe:
        # Two sign-ups: each a person.registered and the audit's signed_up.
        await probe.collect(lambda seen: len(seen) >= 4)
        events = await probe.settle(0.5)
    for event in events:  # the audit's security event comes too
        assert_valid_event(event)
        assert "李伟" not in event.to_kafka().value.decode()  # no personal data in events
    events = [e for e in events if e.type == "gov.tongban.identity.person.registered.v1"]
    # Keyed by person, so on different partitions: no order between the two.
    assert sorted(e.subject for e in events) == sorted([person["id"], neighbour.json()["id"]])


async def test_a_business_registered_event_creates_the_legal_person(
    client: httpx.AsyncClient, node_settings: NodeSettings
) -> None:
    uscc = "91440305000000019K"
    event = CloudEvent.new(
        "gov.tongban.registration.business.registered.v1",
        source="/nodes/440300/registration",
        subject=uscc,
        data={
            "business_id": "6f1c1e57-5f6b-4a43-9b11-111111111111",
            "uscc": uscc,
            "name": "深圳市腾飞科技有限公司",
            "division_code": "440305",
            "registered_at": "2026-11-26T10:00:00+00:00",
        },
    )
    await publish_events(node_settings, event)

    response = await eventually(
        lambda: client.get(f"/v1/legal-persons/{uscc}"), lambda r: r.status_code == 200
    )
    assert response.json()["name"] == "深圳市腾飞科技有限公司"


async def test_unknown_people_are_a_404_problem(client: httpx.AsyncClient) -> None:
    app = client._transport.app  # type: ignore[attr-defined]
    operator = {"Authorization": f"Bearer {await mint_token(app, 'tongban:admin', subject='op')}"}
    missing = await client.get("/v1/persons/6f1c1e57-5f6b-4a43-9b11-111111111111", headers=operator)
    not_an_id = await client.get("/v1/persons/42", headers=operator)

    assert missing.status_code == 404
    assert not_an_id.status_code == 422
    assert missing.headers["content-type"] == not_an_id.headers["content-type"]
