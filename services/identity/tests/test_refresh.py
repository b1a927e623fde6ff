"""Refresh tokens rotate within a family; a retry within the grace window is forgiven; reuse
after it revokes the whole family and says so in the audit log and on Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tongban_identity.sessions.testing import SignInDriver, resident_id, running_identity
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import EventProbe, assert_valid_event

PERSON = resident_id(2)
REUSED = "gov.tongban.identity.security.refresh_reused.v1"


@pytest.fixture
def relay() -> bool:
    """Whether the outbox relay runs (only tests that read Kafka need it)."""
    return False


@pytest.fixture
async def identity(  # type: ignore[no-untyped-def]
    make_database, node_settings: NodeSettings, relay: bool
) -> AsyncIterator[SignInDriver]:
    url = await make_database("tongban_identity:migrations")
    async with running_identity(url, node_settings, run_workers=relay) as driver:
        await driver.sign_up(PERSON)
        yield driver


async def _after_the_grace_window(identity: SignInDriver) -> None:
    """As if the spent tokens had been spent a minute ago."""
    await identity.sql(
        "UPDATE refresh_tokens SET used_at = used_at - interval '1 minute' "
        "WHERE used_at IS NOT NULL"
    )


def _error(response: object) -> str:
    body = response.json()  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    return str(body["error"])


async def test_a_refresh_token_rotates_into_a_new_pair_of_the_same_sign_in(
    identity: SignInDriver,
) -> None:
    first = await identity.tokens(PERSON)

    response = await identity.refresh(first["refresh_token"])

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    second = response.json()
    assert set(second) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert second["refresh_token"] != first["refresh_token"]
    old, new = [await identity.verify(t["access_token"]) for t in (first, second)]
    assert (new.sub, new.acr, new.amr, new.auth_time) == (old.sub, old.acr, old.amr, old.auth_time)
    assert new.jti != old.jti
    rows = await identity.sql(
        "SELECT parent_id IS NULL, used_at IS NOT NULL FROM refresh_tokens "
        "ORDER BY parent_id NULLS FIRST"
    )
    assert rows == [(True, True), (False, False)]
    assert await identity.sql("SELECT count(DISTINCT family_id) FROM refresh_tokens") == [(1,)]
    assert (await identity.refresh(second["refresh_token"])).status_code == 200


async def test_only_the_hash_of_a_refresh_token_is_stored(identity: SignInDriver) -> None:
    token = (await identity.tokens(PERSON))["refresh_token"]

    rows = await identity.sql("SELECT * FROM refresh_tokens")

    assert token not in repr(rows)


async def test_a_retry_within_the_grace_window_gets_a_new_pair_and_revokes_nothing(
    identity: SignInDriver,
) -> None:
    first = await identity.tokens(PERSON)
    second = (await identity.refresh(first["refresh_token"])).json()

    retry = await identity.refresh(first["refresh_token"])

    assert retry.status_code == 200, retry.text
    assert (await identity.refresh(second["refresh_token"])).status_code == 200
    assert (await identity.refresh(retry.json()["refresh_token"])).status_code == 200
    assert await identity.sql(
        "SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NOT NULL"
    ) == [(0,)]


async def test_two_refreshes_racing_with_one_token_both_succeed(identity: SignInDriver) -> None:
    first = await identity.tokens(PERSON)

    answers = await asyncio.gather(*(identity.refresh(first["refresh_token"]) for _ in range(2)))

    assert [a.status_code for a in answers] == [200, 200]
    [(used_at,)] = await identity.sql("SELECT used_at FROM refresh_tokens WHERE parent_id IS NULL")
    assert used_at is not None


@pytest.mark.parametrize("relay", [True])
async def test_reuse_after_the_grace_window_revokes_the_whole_family_newest_token_too(
    identity: SignInDriver, node_settings: NodeSettings
) -> None:
    first = await identity.tokens(PERSON)
    second = (await identity.refresh(first["refresh_token"])).json()
    third = (await identity.refresh(second["refresh_token"])).json()
    other_sign_in = await identity.tokens(PERSON)
    await _after_the_grace_window(identity)

    replay = await identity.refresh(first["refresh_token"])

    assert replay.status_code == 400
    assert _error(replay) == "invalid_grant"
    newest = await identity.refresh(third["refresh_token"])
    assert newest.status_code == 400
    assert _error(newest) == "invalid_grant"
    family = await identity.sql(
        "SELECT t.revoked_at IS NOT NULL, f.revoked_reason FROM refresh_tokens t "
        "JOIN refresh_families f ON f.id = t.family_id WHERE t.family_id = "
        "(SELECT family_id FROM refresh_tokens WHERE parent_id IS NULL ORDER BY issued_at LIMIT 1)"
    )
    assert family == [(True, "reuse")] * 3
    # Another sign-in of the same person is not touched.
    assert (await identity.refresh(other_sign_in["refresh_token"])).status_code == 200

    [(person_id, actor, detail)] = await identity.sql(
        "SELECT subject, actor, detail FROM audit_events WHERE type = 'refresh_reused'"
    )
    assert actor == "anonymous"
    assert detail["tokens_revoked"] == 3
    async with EventProbe(node_settings, "identity.events") as probe:
        events = await probe.collect(lambda seen: any(e.type == REUSED for e in seen))
    [event] = [e for e in events if e.type == REUSED]
    assert_valid_event(event)
    assert event.subject == str(person_id)
    assert event.data["detail"]["family_id"] == detail["family_id"]
    for token in (first, second, third):
        assert token["refresh_token"] not in event.to_kafka().value.decode()


async def test_a_reused_token_of_a_revoked_family_changes_nothing_more(
    identity: SignInDriver,
) -> None:
    first = await identity.tokens(PERSON)
    await identity.refresh(first["refresh_token"])
    await _after_the_grace_window(identity)
    await identity.refresh(first["refresh_token"])

    again = await identity.refresh(first["refresh_token"])

    assert _error(again) == "invalid_grant"
    assert await identity.sql(
        "SELECT count(*) FROM audit_events WHERE type = 'refresh_reused'"
    ) == [(1,)]


async def test_an_expired_refresh_token_is_an_invalid_grant(identity: SignInDriver) -> None:
    token = (await identity.tokens(PERSON))["refresh_token"]
    await identity.sql("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'")

    response = await identity.refresh(token)

    assert response.status_code == 400
    assert _error(response) == "invalid_grant"


async def test_a_sign_in_ends_at_its_maximum_however_often_it_is_refreshed(
    identity: SignInDriver,
) -> None:
    token = (await identity.tokens(PERSON))["refresh_token"]
    await identity.sql("UPDATE refresh_families SET expires_at = now() - interval '1 second'")

    assert _error(await identity.refresh(token)) == "invalid_grant"


async def test_a_refresh_may_narrow_the_scope_but_not_widen_it(identity: SignInDriver) -> None:
    first = await identity.tokens(PERSON)

    narrowed = await identity.refresh(first["refresh_token"], scope="openid")
    widened = await identity.refresh(narrowed.json()["refresh_token"], scope="openid admin")

    assert narrowed.status_code == 200
    assert narrowed.json()["scope"] == "openid"
    assert (await identity.verify(narrowed.json()["access_token"])).scope == "openid"
    assert widened.status_code == 400
    assert _error(widened) == "invalid_scope"
    # The refresh token keeps the sign-in's whole scope (RFC 6749 §6).
    full = await identity.refresh(narrowed.json()["refresh_token"])
    assert full.json()["scope"] == "openid profile"


async def test_an_unknown_refresh_token_is_an_invalid_grant(identity: SignInDriver) -> None:
    response = await identity.refresh("made-up-token")

    assert response.status_code == 400
    assert _error(response) == "invalid_grant"
    assert response.headers["cache-control"] == "no-store"


FORM = "application/x-www-form-urlencoded"
BAD = "invalid_request"


@pytest.mark.parametrize(
    ("content_type", "body", "error"),
    [
        ("application/json", b'{"grant_type": "refresh_token", "refresh_token": "x"}', BAD),
        ("text/plain", b"grant_type=refresh_token&refresh_token=x", "invalid_request"),
        (FORM, b"grant_type=refresh_token&refresh_token=%ff%fe", "invalid_request"),
        (FORM, b"grant_type=refresh_token&grant_type=refresh_token&refresh_token=x", BAD),
        (FORM, b"refresh_token=x", "invalid_request"),
        (FORM, b"grant_type=refresh_token", "invalid_request"),
        (FORM, b"grant_type=refresh_token&refresh_token=", "invalid_request"),
        (FORM, b"grant_type=password&username=a&password=b", "unsupported_grant_type"),
    ],
    ids=["json", "text", "not-utf8", "repeated", "no-grant", "no-token", "empty", "password"],
)  # fmt: skip
async def test_malformed_token_requests_are_oauth_problems_that_write_nothing(
    identity: SignInDriver, content_type: str, body: bytes, error: str
) -> None:
    await identity.tokens(PERSON)
    before = [await identity.count(t) for t in ("refresh_tokens", "audit_events", "tongban_outbox")]

    response = await identity.client.post(
        "/oauth/token", content=body, headers={"content-type": content_type}
    )

    assert response.status_code == 400
    assert _error(response) == error
    assert response.json()["error_description"] == response.json()["detail"]
    after = [await identity.count(t) for t in ("refresh_tokens", "audit_events", "tongban_outbox")]
    assert after == before
    assert await identity.sql("SELECT count(*) FROM refresh_tokens WHERE used_at IS NOT NULL") == [
        (0,)
    ]


async def test_the_discovery_document_names_the_token_and_revocation_endpoints(
    identity: SignInDriver,
) -> None:
    document = (await identity.client.get("/.well-known/openid-configuration")).json()

    issuer = identity.settings.issuer
    assert document["token_endpoint"] == f"{issuer}/oauth/token"
    assert document["revocation_endpoint"] == f"{issuer}/oauth/revoke"
    assert "refresh_token" in document["grant_types_supported"]
