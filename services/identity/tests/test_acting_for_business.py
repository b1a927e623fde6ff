"""Acting for a business: registration's business-registered event names the legal
representative; identity keeps their ID number sealed, records the delegation under its blind
index, and the representative (signed up before or after) gets tokens naming the business.
Anyone else is refused and nothing is written."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tongban_identity.legal_persons.handlers import BUSINESS_REGISTERED, business_registered_handler
from tongban_identity.sessions.testing import SignInDriver, resident_id, running_identity
from tongban_identity.signatures.testing import mint_token
from tongban_kit.auth import AccessClaims
from tongban_kit.events import CloudEvent
from tongban_kit.identifiers import generate_uscc
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import EventProbe, assert_valid_event, eventually, publish_events

REPRESENTATIVE = resident_id(2)
SOMEONE_ELSE = resident_id(3)
SUCCESSOR = resident_id(4)
USCC = generate_uscc(division_code="440305", serial=19)
OTHER_USCC = generate_uscc(division_code="440305", serial=20)
PROBLEM = "application/problem+json"
ACTED = "gov.tongban.identity.security.acted_for_business.v1"


def registered(
    uscc: str, representative: str | None, name: str = "深圳市腾飞科技有限公司"
) -> CloudEvent:
    data: dict[str, Any] = {
        "business_id": str(uuid.uuid4()),
        "uscc": uscc,
        "name": name,
        "division_code": "440305",
        "registered_at": "2026-11-26T10:00:00+00:00",
    }
    if representative is not None:
        data["legal_representative"] = {"name": "李法人", "resident_id": representative}
    return CloudEvent.new(
        BUSINESS_REGISTERED, source="/nodes/440300/registration", subject=uscc, data=data
    )


async def apply(identity: SignInDriver, event: CloudEvent) -> None:
    """Apply an event as the inbox consumer would (its own transaction)."""
    handler = business_registered_handler(identity.app.state.personal_data)
    async with identity.app.state.sessionmaker() as session, session.begin():
        await handler(session, event)


@pytest.fixture
async def database(make_database) -> str:  # type: ignore[no-untyped-def]
    url: str = await make_database("tongban_identity:migrations")
    return url


@pytest.fixture
async def identity(database: str, node_settings: NodeSettings) -> AsyncIterator[SignInDriver]:
    async with running_identity(database, node_settings, run_workers=False) as driver:
        yield driver


async def bearer(identity: SignInDriver, person: str) -> dict[str, str]:
    tokens = await identity.tokens(person)
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def act_as(identity: SignInDriver, headers: dict[str, str], uscc: str) -> httpx.Response:
    return await identity.client.post("/v1/me/act-as", json={"uscc": uscc}, headers=headers)


async def test_the_representative_signed_up_later_acts_for_the_business_via_the_broker(
    database: str, node_settings: NodeSettings
) -> None:
    async with running_identity(database, node_settings) as identity:
        await publish_events(node_settings, registered(USCC, REPRESENTATIVE), times=2)
        await eventually(
            lambda: identity.sql("SELECT count(*) FROM legal_persons"), lambda r: r == [(1,)]
        )
        await identity.sign_up(REPRESENTATIVE)
        headers = await bearer(identity, REPRESENTATIVE)

        listed = await identity.client.get("/v1/me/businesses", headers=headers)

        assert listed.status_code == 200
        [item] = listed.json()["items"]
        assert (item["uscc"], item["role"]) == (USCC, "legal_representative")
        assert await identity.count("delegations") == 1  # redelivered, applied once
        assert (await act_as(identity, headers, USCC)).status_code == 200

        async with EventProbe(node_settings, "identity.events") as probe:
            events = await probe.collect(lambda seen: any(e.type == ACTED for e in seen))
    [event] = [e for e in events if e.type == ACTED]
    assert_valid_event(event)
    assert event.data["detail"]["uscc"] == USCC
    assert REPRESENTATIVE not in event.to_kafka().value.decode()


async def test_the_acting_token_names_the_business_and_keeps_the_person(
    identity: SignInDriver,
) -> None:
    await apply(identity, registered(USCC, REPRESENTATIVE))
    person_id = await identity.sign_up(REPRESENTATIVE)
    tokens = await identity.tokens(REPRESENTATIVE)
    own = await identity.verify(tokens["access_token"])

    response = await act_as(identity, {"Authorization": f"Bearer {tokens['access_token']}"}, USCC)

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["business"] == USCC
    assert "refresh_token" not in body
    acting: AccessClaims = await identity.verify(body["access_token"])
    assert acting.business == USCC
    assert acting.principal == "business"
    assert (acting.sub, acting.acr, acting.amr, acting.scope) == (
        person_id,
        own.acr,
        own.amr,
        own.scope,
    )
    assert acting.auth_time == own.auth_time
    assert acting.exp <= own.exp
    [(actor, detail)] = await identity.sql(
        "SELECT actor, detail FROM audit_events WHERE type = 'acted_for_business'"
    )
    assert actor == "self"
    assert (detail["uscc"], detail["source"]) == (USCC, "legal_representative")


async def test_acting_tokens_end_with_the_sign_in(identity: SignInDriver) -> None:
    await apply(identity, registered(USCC, REPRESENTATIVE))
    await identity.sign_up(REPRESENTATIVE)
    tokens = await identity.tokens(REPRESENTATIVE)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    acting = (await act_as(identity, headers, USCC)).json()["access_token"]
    service = await mint_token(identity.app, "identity:introspect", subject="svc-test")
    service_headers = {"Authorization": f"Bearer {service}"}

    before = await identity.client.post(
        "/oauth/introspect", data={"token": acting}, headers=service_headers
    )
    await identity.client.post(
        "/v1/logout", json={"refresh_token": tokens["refresh_token"]}, headers=headers
    )
    after = await identity.client.post(
        "/oauth/introspect", data={"token": acting}, headers=service_headers
    )

    assert (before.json()["active"], before.json()["business"]) == (True, USCC)
    assert after.json() == {"active": False}


async def test_someone_who_does_not_represent_the_business_is_refused_and_nothing_is_written(
    identity: SignInDriver,
) -> None:
    await apply(identity, registered(USCC, REPRESENTATIVE))
    await apply(identity, registered(OTHER_USCC, SOMEONE_ELSE))
    await identity.sign_up(REPRESENTATIVE)
    await identity.sign_up(SOMEONE_ELSE)
    stranger = await bearer(identity, SOMEONE_ELSE)
    representative = await bearer(identity, REPRESENTATIVE)
    audit_rows = await identity.count("audit_events")
    unknown = generate_uscc(division_code="440305", serial=99)

    refusals = [
        await act_as(identity, stranger, USCC),
        await act_as(identity, representative, OTHER_USCC),
        await act_as(identity, representative, unknown),
    ]

    for response in refusals:
        assert response.status_code == 403
        assert response.headers["content-type"] == PROBLEM
        assert "access_token" not in response.text
    assert await identity.count("audit_events") == audit_rows
    listed = (await identity.client.get("/v1/me/businesses", headers=stranger)).json()
    assert [item["uscc"] for item in listed["items"]] == [OTHER_USCC]


async def test_non_persons_and_bad_input_are_refused(identity: SignInDriver) -> None:
    await apply(identity, registered(USCC, REPRESENTATIVE))
    await identity.sign_up(REPRESENTATIVE)
    headers = await bearer(identity, REPRESENTATIVE)
    service = await mint_token(identity.app, "openid", subject="svc-test")
    audit_rows = await identity.count("audit_events")

    no_token = await identity.client.post("/v1/me/act-as", json={"uscc": USCC})
    not_a_person = await act_as(identity, {"Authorization": f"Bearer {service}"}, USCC)
    bad_checksum = await act_as(identity, headers, USCC[:-1] + ("0" if USCC[-1] != "0" else "1"))
    extra = await identity.client.post(
        "/v1/me/act-as", json={"uscc": USCC, "sub": "someone"}, headers=headers
    )
    malformed = await identity.client.post(
        "/v1/me/act-as",
        content=b"{not json",
        headers={**headers, "content-type": "application/json"},
    )

    assert no_token.status_code == 401
    assert not_a_person.status_code == 403
    assert malformed.status_code == 400
    for response in (bad_checksum, extra):
        assert response.status_code == 422, response.text
    for response in (no_token, not_a_person, bad_checksum, extra, malformed):
        assert response.headers["content-type"] == PROBLEM
    assert await identity.count("audit_events") == audit_rows


async def test_the_representatives_id_is_sealed_and_a_new_representative_replaces_the_old(
    identity: SignInDriver,
) -> None:
    await apply(identity, registered(USCC, REPRESENTATIVE))
    await identity.sign_up(REPRESENTATIVE)
    await identity.sign_up(SUCCESSOR)
    old = await bearer(identity, REPRESENTATIVE)

    await apply(identity, registered(USCC, SUCCESSOR))

    dump = repr(await identity.sql("SELECT * FROM legal_persons")) + repr(
        await identity.sql("SELECT * FROM delegations")
    )
    for number in (REPRESENTATIVE, SUCCESSOR):
        assert number not in dump
        assert number.encode() not in dump.encode()
    [(masked,)] = await identity.sql("SELECT representative_id_masked FROM legal_persons")
    assert masked == SUCCESSOR[:6] + "********" + SUCCESSOR[14:]
    assert (await act_as(identity, old, USCC)).status_code == 403
    assert (await act_as(identity, await bearer(identity, SUCCESSOR), USCC)).status_code == 200
    [(ended,)] = await identity.sql("SELECT count(*) FROM delegations WHERE ended_at IS NOT NULL")
    assert ended == 1


async def test_an_event_without_a_representative_records_the_business_and_no_delegation(
    identity: SignInDriver,
) -> None:
    await apply(identity, registered(USCC, None))
    await apply(identity, registered(OTHER_USCC, "110105194912310020"))  # bad check character

    assert await identity.count("legal_persons") == 2
    assert await identity.count("delegations") == 0
