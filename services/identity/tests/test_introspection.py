"""Token introspection (RFC 7662): an authenticated client or service learns whether an access
token is active; tokens of an ended sign-in, expired, foreign or not access tokens at all are
inactive; callers that fail authentication are refused and use up nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tongban_identity.departments.testing import EnrolledClient, enrol_client
from tongban_identity.sessions.testing import SignInDriver, resident_id, running_identity
from tongban_identity.signatures.testing import mint_token
from tongban_identity.tokens.service import issue_access_token
from tongban_kit.auth.testing import LocalIssuer
from tongban_kit.settings import NodeSettings

PERSON = resident_id(2)
PROBLEM = "application/problem+json"
INTROSPECT = "/oauth/introspect"


@pytest.fixture
async def identity(make_database, node_settings: NodeSettings) -> AsyncIterator[SignInDriver]:  # type: ignore[no-untyped-def]
    url = await make_database("tongban_identity:migrations")
    async with running_identity(url, node_settings, run_workers=False) as driver:
        await driver.sign_up(PERSON)
        yield driver


@pytest.fixture
async def tax(identity: SignInDriver) -> EnrolledClient:
    return await enrol_client(identity.app, "tax", ["exchange:query"])


def _endpoint(identity: SignInDriver) -> str:
    return f"{identity.settings.issuer}{INTROSPECT}"


async def introspect_as(
    identity: SignInDriver, client: EnrolledClient, token: str, **form: str
) -> httpx.Response:
    body = {"token": token, **client.authentication(_endpoint(identity)), **form}
    return await identity.client.post(INTROSPECT, data=body)


async def _active(identity: SignInDriver, client: EnrolledClient, token: str) -> dict[str, Any]:
    response = await introspect_as(identity, client, token)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_a_persons_access_token_is_active_with_its_claims(
    identity: SignInDriver, tax: EnrolledClient
) -> None:
    tokens = await identity.tokens(PERSON)
    claims = await identity.verify(tokens["access_token"])

    response = await introspect_as(identity, tax, tokens["access_token"])

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    answer = response.json()
    assert answer["active"] is True
    assert answer["token_type"] == "Bearer"
    assert (answer["sub"], answer["scope"], answer["acr"]) == (claims.sub, claims.scope, "low")
    assert answer["exp"] == int(claims.exp.timestamp())
    assert answer["iss"] == identity.settings.issuer
    assert answer["amr"] == ["pwd"]
    [(family_id,)] = await identity.sql("SELECT id FROM refresh_families")
    assert answer["sid"] == str(family_id)


async def test_a_departments_own_token_introspects_with_the_department(
    identity: SignInDriver, tax: EnrolledClient
) -> None:
    issued = await identity.client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            **tax.authentication(f"{identity.settings.issuer}/oauth/token"),
        },
    )
    assert issued.status_code == 200, issued.text

    answer = await _active(identity, tax, issued.json()["access_token"])

    assert answer["active"] is True
    assert (answer["department"], answer["client_id"]) == ("tax", tax.client_id)
    assert "acr" not in answer


@pytest.mark.parametrize("how", ["logout", "revocation", "reuse"])
async def test_access_tokens_of_an_ended_sign_in_are_inactive(
    identity: SignInDriver, tax: EnrolledClient, how: str
) -> None:
    tokens = await identity.tokens(PERSON)
    other = await identity.tokens(PERSON)  # another sign-in of the same person stays
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    if how == "logout":
        ended = await identity.client.post(
            "/v1/logout", json={"refresh_token": tokens["refresh_token"]}, headers=bearer
        )
        assert ended.status_code == 204
    elif how == "revocation":
        ended = await identity.client.post("/oauth/revoke", data={"token": tokens["refresh_token"]})
        assert ended.status_code == 200
    else:
        await identity.refresh(tokens["refresh_token"])
        await identity.sql("UPDATE refresh_tokens SET used_at = used_at - interval '1 hour'")
        reused = await identity.refresh(tokens["refresh_token"])
        assert reused.json()["error"] == "invalid_grant"

    assert await _active(identity, tax, tokens["access_token"]) == {"active": False}
    assert (await _active(identity, tax, other["access_token"]))["active"] is True


async def test_expired_foreign_and_non_access_tokens_are_inactive(
    identity: SignInDriver, tax: EnrolledClient, token_issuer: LocalIssuer
) -> None:
    tokens = await identity.tokens(PERSON)
    settings = identity.settings
    async with identity.app.state.sessionmaker() as session, session.begin():
        short = await issue_access_token(
            session,
            vault=identity.app.state.key_vault,
            issuer=settings.issuer,
            subject="someone",
            audience=settings.token_audience,
            scope=["openid"],
            acr=None,
            amr=(),
            auth_time=None,
            node="440300",
            lifetime_s=1,
        )
    foreign = token_issuer.mint(scope="openid", acr="high", sub="intruder")
    header, payload, signature = tokens["access_token"].split(".")
    flipped = "A" if signature[10] != "A" else "B"
    tampered = f"{header}.{payload}.{signature[:10]}{flipped}{signature[11:]}"
    await asyncio.sleep(2.1)

    for token in [short, foreign, tampered, tokens["refresh_token"], "not-a-token", "a.b.c"]:
        assert await _active(identity, tax, token) == {"active": False}


async def test_a_service_with_the_introspect_scope_may_ask_by_bearer_token(
    identity: SignInDriver,
) -> None:
    tokens = await identity.tokens(PERSON)
    service = await mint_token(identity.app, "identity:introspect", subject="svc-data-exchange")
    no_scope = await mint_token(identity.app, "exchange:query", subject="svc-data-exchange")

    allowed = await identity.client.post(
        INTROSPECT,
        data={"token": tokens["access_token"]},
        headers={"Authorization": f"Bearer {service}"},
    )
    refused = await identity.client.post(
        INTROSPECT,
        data={"token": tokens["access_token"]},
        headers={"Authorization": f"Bearer {no_scope}"},
    )

    assert allowed.status_code == 200
    assert allowed.json()["active"] is True
    assert refused.status_code == 403
    assert refused.headers["content-type"] == PROBLEM
    assert "insufficient_scope" in refused.headers["www-authenticate"]


async def test_callers_that_fail_authentication_are_refused_and_use_up_nothing(
    identity: SignInDriver, tax: EnrolledClient
) -> None:
    tokens = await identity.tokens(PERSON)
    used = tax.authentication(_endpoint(identity))
    first = await identity.client.post(INTROSPECT, data={"token": tokens["access_token"], **used})
    assert first.status_code == 200
    before = await identity.count("client_assertion_jtis")

    anonymous = await identity.client.post(INTROSPECT, data={"token": tokens["access_token"]})
    replayed = await identity.client.post(
        INTROSPECT, data={"token": tokens["access_token"], **used}
    )
    bad_bearer = await identity.client.post(
        INTROSPECT,
        data={"token": tokens["access_token"]},
        headers={"Authorization": "Bearer not-a-token"},
    )

    for response in (anonymous, replayed):
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["error"] == "invalid_client"
        assert "active" not in response.json()
    assert bad_bearer.status_code == 401
    assert bad_bearer.headers["content-type"] == PROBLEM
    assert await identity.count("client_assertion_jtis") == before


async def test_malformed_requests_are_invalid_request(
    identity: SignInDriver, tax: EnrolledClient
) -> None:
    no_token = await identity.client.post(INTROSPECT, data=tax.authentication(_endpoint(identity)))
    as_json = await identity.client.post(INTROSPECT, json={"token": "x"})

    for response in (no_token, as_json):
        assert response.status_code == 400
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["error"] == "invalid_request"
