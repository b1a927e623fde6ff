"""Ending a sign-in: RFC 7009 revocation by whoever holds the refresh token, and logout by the
signed-in person; either revokes the token's whole family."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tongban_identity.sessions.testing import SignInDriver, resident_id, running_identity
from tongban_kit.settings import NodeSettings

PERSON = resident_id(2)
OTHER = resident_id(3)


@pytest.fixture
async def identity(make_database, node_settings: NodeSettings) -> AsyncIterator[SignInDriver]:  # type: ignore[no-untyped-def]
    url = await make_database("tongban_identity:migrations")
    async with running_identity(url, node_settings, run_workers=False) as driver:
        await driver.sign_up(PERSON)
        yield driver


async def _revoked_tokens(identity: SignInDriver) -> int:
    [(n,)] = await identity.sql("SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NOT NULL")
    return int(n)


async def test_revoking_a_refresh_token_ends_its_whole_sign_in(identity: SignInDriver) -> None:
    first = await identity.tokens(PERSON)
    second = (await identity.refresh(first["refresh_token"])).json()

    response = await identity.client.post(
        "/oauth/revoke", data={"token": first["refresh_token"], "token_type_hint": "refresh_token"}
    )

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert (await identity.refresh(second["refresh_token"])).json()["error"] == "invalid_grant"
    assert await _revoked_tokens(identity) == 2
    [(actor, detail)] = await identity.sql(
        "SELECT actor, detail FROM audit_events WHERE type = 'logged_out'"
    )
    assert actor == "anonymous"
    assert (detail["via"], detail["tokens_revoked"]) == ("revocation", 2)


async def test_revoking_an_unknown_or_revoked_token_is_200_and_changes_nothing(
    identity: SignInDriver,
) -> None:
    tokens = await identity.tokens(PERSON)
    await identity.client.post("/oauth/revoke", data={"token": tokens["refresh_token"]})

    unknown = await identity.client.post("/oauth/revoke", data={"token": "never-issued"})
    again = await identity.client.post("/oauth/revoke", data={"token": tokens["refresh_token"]})
    access = await identity.client.post(
        "/oauth/revoke", data={"token": tokens["access_token"], "token_type_hint": "access_token"}
    )

    assert [r.status_code for r in (unknown, again, access)] == [200, 200, 200]
    assert await identity.count("audit_events") == 3  # sign-up, login, one revocation


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"token_type_hint=refresh_token"),
        ("application/json", b'{"token": "x"}'),
        ("application/x-www-form-urlencoded", b"token=%ff"),
    ],
    ids=["no-token", "json", "not-utf8"],
)
async def test_a_malformed_revocation_request_is_an_invalid_request(
    identity: SignInDriver, content_type: str, body: bytes
) -> None:
    response = await identity.client.post(
        "/oauth/revoke", content=body, headers={"content-type": content_type}
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["error"] == "invalid_request"


async def test_logout_ends_the_callers_sign_in(identity: SignInDriver) -> None:
    tokens = await identity.tokens(PERSON)
    other_sign_in = await identity.tokens(PERSON)

    response = await identity.client.post(
        "/v1/logout",
        json={"refresh_token": tokens["refresh_token"]},
        headers={"authorization": f"Bearer {tokens['access_token']}"},
    )

    assert response.status_code == 204
    assert (await identity.refresh(tokens["refresh_token"])).status_code == 400
    assert (await identity.refresh(other_sign_in["refresh_token"])).status_code == 200
    [(actor, via)] = await identity.sql(
        "SELECT actor, detail->>'via' FROM audit_events WHERE type = 'logged_out'"
    )
    assert (actor, via) == ("self", "logout")


async def test_logout_needs_an_access_token(identity: SignInDriver) -> None:
    tokens = await identity.tokens(PERSON)

    response = await identity.client.post(
        "/v1/logout", json={"refresh_token": tokens["refresh_token"]}
    )

    assert response.status_code == 401
    assert (await identity.refresh(tokens["refresh_token"])).status_code == 200


async def test_logout_cannot_end_another_persons_sign_in(identity: SignInDriver) -> None:
    await identity.sign_up(OTHER)
    victim = await identity.tokens(PERSON)
    caller = await identity.tokens(OTHER)

    response = await identity.client.post(
        "/v1/logout",
        json={"refresh_token": victim["refresh_token"]},
        headers={"authorization": f"Bearer {caller['access_token']}"},
    )

    assert response.status_code == 403
    assert (await identity.refresh(victim["refresh_token"])).status_code == 200
