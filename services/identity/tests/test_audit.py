"""The security audit log: written with the effect (a failed login's row survives its 401),
published as catalogued events, free of identifiers and secrets, and append-only in the
database itself."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.exc import DBAPIError

from tongban_identity.sessions.testing import (
    PASSWORD,
    SignInDriver,
    resident_id,
    running_identity,
)
from tongban_kit.crypto import totp_at
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import EventProbe, assert_valid_event

PERSON = resident_id(2)
NOBODY = resident_id(999)
SECURITY = "gov.tongban.identity.security."


@pytest.fixture
async def identity(make_database, node_settings: NodeSettings) -> AsyncIterator[SignInDriver]:  # type: ignore[no-untyped-def]
    url = await make_database("tongban_identity:migrations")
    async with running_identity(url, node_settings) as driver:
        yield driver


async def test_a_failed_login_is_logged_although_the_request_fails(
    identity: SignInDriver,
) -> None:
    person_id = await identity.sign_up(PERSON)

    assert (await identity.login(PERSON, "wrong password")).status_code == 401
    assert (await identity.login(NOBODY, "wrong password")).status_code == 401

    rows = await identity.sql(
        "SELECT subject::text, actor, ip, detail->>'reason' FROM audit_events "
        "WHERE type = 'login_failed' ORDER BY at"
    )
    assert rows == [
        (person_id, "anonymous", "127.0.0.1", "wrong_password"),
        (None, "anonymous", "127.0.0.1", "unknown_account"),
    ]


async def test_every_security_event_is_published_valid_and_without_secrets(
    identity: SignInDriver, node_settings: NodeSettings
) -> None:
    await identity.sign_up(PERSON)
    await identity.login(NOBODY, "wrong password")
    tokens = await identity.tokens(PERSON)
    bearer = {"authorization": f"Bearer {tokens['access_token']}"}
    secret = (await identity.client.post("/v1/me/totp", headers=bearer)).json()["secret"]
    code = totp_at(secret, time.time())
    await identity.client.post("/v1/me/totp/confirm", json={"code": code}, headers=bearer)
    await identity.client.post("/oauth/revoke", data={"token": tokens["refresh_token"]})
    expected = {"signed_up", "login_failed", "login_succeeded", "totp_enabled", "logged_out"}

    async with EventProbe(node_settings, "identity.events") as probe:
        events = await probe.collect(
            lambda seen: (
                {e.type.removeprefix(SECURITY).removesuffix(".v1") for e in seen} >= expected
            )
        )

    security = [e for e in events if e.type.startswith(SECURITY)]
    assert {e.type.removeprefix(SECURITY).removesuffix(".v1") for e in security} == expected
    audit_ids = {str(i) for (i,) in await identity.sql("SELECT id FROM audit_events")}
    for event in security:
        assert_valid_event(event)
        assert event.data["audit_id"] in audit_ids
        raw = event.to_kafka().value.decode()
        for secret_value in (PERSON, NOBODY, PASSWORD, secret, code, "127.0.0.1", "王小明"):
            assert secret_value not in raw
        assert tokens["access_token"] not in raw
        assert tokens["refresh_token"] not in raw


async def test_audit_rows_hold_no_identifier_password_or_token(identity: SignInDriver) -> None:
    await identity.sign_up(PERSON)
    await identity.login(PERSON, "wrong password")
    tokens = await identity.tokens(PERSON)
    await identity.refresh(tokens["refresh_token"])

    rows = repr(await identity.sql("SELECT * FROM audit_events"))

    for secret_value in (PERSON, PASSWORD, "wrong password", tokens["refresh_token"]):
        assert secret_value not in rows
    assert tokens["access_token"] not in rows


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'someone else'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ],
)
async def test_the_database_refuses_to_change_or_remove_audit_rows(
    identity: SignInDriver, statement: str
) -> None:
    await identity.sign_up(PERSON)

    with pytest.raises(DBAPIError, match="append-only"):
        await identity.sql(statement)

    assert await identity.sql("SELECT type, actor FROM audit_events") == [("signed_up", "self")]
