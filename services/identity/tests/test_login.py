"""Login: a token every service accepts; unknown accounts and wrong passwords look the same;
passwords are rehashed when the parameters change; bad input writes nothing."""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import jwt
import pytest

from tongban_identity.sessions.testing import (
    PASSWORD,
    SignInDriver,
    resident_id,
    running_identity,
)
from tongban_kit.crypto import PasswordHasher
from tongban_kit.settings import NodeSettings

PERSON = resident_id(2)
NOBODY = resident_id(999)


@pytest.fixture
async def identity(make_database, node_settings: NodeSettings) -> AsyncIterator[SignInDriver]:  # type: ignore[no-untyped-def]
    url = await make_database("tongban_identity:migrations")
    async with running_identity(url, node_settings, run_workers=False) as driver:
        yield driver


def _same_problem(response: dict[str, object]) -> dict[str, object]:
    """A problem body without its request id (unique to each request)."""
    return {name: value for name, value in response.items() if name != "request_id"}


async def test_login_returns_a_token_pair_whose_access_token_verifies_against_the_jwks(
    identity: SignInDriver,
) -> None:
    person_id = await identity.sign_up(PERSON)
    before = int(datetime.now(UTC).timestamp())

    response = await identity.login(PERSON)

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert (body["token_type"], body["expires_in"], body["scope"]) == (
        "Bearer",
        300,
        "openid profile",
    )
    claims = await identity.verify(body["access_token"])
    assert claims.sub == person_id
    assert claims.acr == "low"
    assert claims.amr == ("pwd",)
    assert claims.aud == ("tongban:440300",)
    assert claims.scope == "openid profile"
    assert claims.auth_time is not None
    assert before <= int(claims.auth_time.timestamp()) <= before + 5


async def test_the_audience_is_a_setting(make_database, node_settings: NodeSettings) -> None:  # type: ignore[no-untyped-def]
    url = await make_database("tongban_identity:migrations")
    node = node_settings.model_copy(update={"token_audience": "tongban:test"})
    async with running_identity(url, node, run_workers=False) as identity:
        await identity.sign_up(PERSON)

        token = (await identity.tokens(PERSON))["access_token"]

    assert jwt.decode(token, options={"verify_signature": False})["aud"] == "tongban:test"


async def test_an_unknown_account_and_a_wrong_password_get_the_same_answer(
    identity: SignInDriver,
) -> None:
    await identity.sign_up(PERSON)

    unknown = await identity.login(NOBODY)
    wrong = await identity.login(PERSON, "not the password at all")

    assert unknown.status_code == wrong.status_code == 401
    assert unknown.headers["content-type"] == wrong.headers["content-type"]
    assert unknown.headers["content-type"] == "application/problem+json"
    assert _same_problem(unknown.json()) == _same_problem(wrong.json())
    assert PERSON not in wrong.text


async def test_an_unknown_account_takes_about_as_long_as_a_wrong_password(
    make_database,  # type: ignore[no-untyped-def]
    node_settings: NodeSettings,
) -> None:
    url = await make_database("tongban_identity:migrations")
    async with running_identity(
        url,
        node_settings,
        run_workers=False,
        hasher=PasswordHasher(),  # the real cost: the hash is what would give it away
        login_backoff_free_failures=100,
        login_backoff_address_free_failures=10_000,
    ) as identity:
        await identity.sign_up(PERSON)
        await identity.login(NOBODY)  # warm-up: the decoy hash is computed on first use
        unknown, wrong = [], []
        for _ in range(7):
            for resident, times in ((NOBODY, unknown), (PERSON, wrong)):
                started = time.perf_counter()
                response = await identity.login(resident, "not the password at all")
                times.append(time.perf_counter() - started)
                assert response.status_code == 401

    ratio = statistics.median(unknown) / statistics.median(wrong)
    assert 0.5 < ratio < 2.0, (unknown, wrong)


async def test_login_rehashes_a_password_hashed_with_older_parameters(
    identity: SignInDriver,
) -> None:
    person_id = await identity.sign_up(PERSON)  # the fixture's cheap hasher
    [(old_hash,)] = await identity.sql("SELECT password_hash FROM persons")
    assert old_hash.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    identity.app.state.password_hasher = PasswordHasher()  # the parameters are raised

    await identity.tokens(PERSON)

    [(new_hash,)] = await identity.sql(
        "SELECT password_hash FROM persons WHERE id = :id", id=person_id
    )
    assert new_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PasswordHasher().verify(new_hash, PASSWORD)
    await identity.tokens(PERSON)  # and the upgraded hash logs in
    [(again,)] = await identity.sql("SELECT password_hash FROM persons")
    assert again == new_hash  # no rehash when nothing changed


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"resident_id": "11010519491231002X", "password": ', 400),  # not JSON
        (b'{"resident_id": "110105194912310021", "password": "x"}', 422),  # bad check digit
        (b'{"resident_id": "11010519491231002X"}', 422),  # no password
        (b'{"resident_id": "11010519491231002X", "password": "x", "admin": true}', 422),
        (b'["11010519491231002X", "x"]', 422),
    ],
)
async def test_malformed_login_requests_are_problems_that_write_nothing(
    identity: SignInDriver, body: bytes, status: int
) -> None:
    await identity.sign_up(PERSON)
    outbox_before = await identity.count("tongban_outbox")

    response = await identity.client.post(
        "/v1/login", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert "11010519491231002" not in response.text
    assert await identity.count("login_throttle") == 0
    assert await identity.count("refresh_tokens") == 0
    assert await identity.count("audit_events") == 1  # the sign-up's
    assert await identity.count("tongban_outbox") == outbox_before
