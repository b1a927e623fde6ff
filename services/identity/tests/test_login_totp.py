"""Optional TOTP: enrol with an access token, confirm with a code, then login needs a code,
and no code is accepted twice."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlparse

import pytest

from tongban_identity.sessions.testing import SignInDriver, resident_id, running_identity
from tongban_kit.crypto import totp_at
from tongban_kit.settings import NodeSettings

PERSON = resident_id(2)


@pytest.fixture
async def identity(make_database, node_settings: NodeSettings) -> AsyncIterator[SignInDriver]:  # type: ignore[no-untyped-def]
    url = await make_database("tongban_identity:migrations")
    async with running_identity(
        url, node_settings, run_workers=False, login_backoff_free_failures=50
    ) as driver:
        yield driver


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def code(secret: str, steps_from_now: int = 0) -> str:
    return totp_at(secret, time.time() + 30 * steps_from_now)


async def _enrol(identity: SignInDriver) -> tuple[str, str]:
    await identity.sign_up(PERSON)
    access = (await identity.tokens(PERSON))["access_token"]
    response = await identity.client.post("/v1/me/totp", headers=_bearer(access))
    assert response.status_code == 200, response.text
    return response.json()["secret"], access


@pytest.fixture
async def secret(identity: SignInDriver) -> str:
    """The TOTP secret of a person who has enrolled and confirmed."""
    secret, access = await _enrol(identity)
    confirmed = await identity.client.post(
        "/v1/me/totp/confirm", json={"code": code(secret)}, headers=_bearer(access)
    )
    assert confirmed.status_code == 200, confirmed.text
    return secret


async def test_enrolment_needs_an_access_token(identity: SignInDriver) -> None:
    anonymous = await identity.client.post("/v1/me/totp")
    forged = await identity.client.post("/v1/me/totp", headers=_bearer("not.a.token"))

    assert anonymous.status_code == forged.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert await identity.count("totp_credentials") == 0


async def test_enrolment_returns_a_secret_and_an_otpauth_uri_stored_sealed(
    identity: SignInDriver,
) -> None:
    secret, _ = await _enrol(identity)

    [(sealed, confirmed_at)] = await identity.sql(
        "SELECT secret_sealed, confirmed_at FROM totp_credentials"
    )
    assert secret.encode() not in bytes(sealed)
    assert confirmed_at is None
    # Not yet confirmed: login still needs no code.
    assert (await identity.login(PERSON)).status_code == 200


async def test_the_provisioning_uri_names_the_node_and_the_masked_id(
    identity: SignInDriver,
) -> None:
    await identity.sign_up(PERSON)
    access = (await identity.tokens(PERSON))["access_token"]

    enrolment = (await identity.client.post("/v1/me/totp", headers=_bearer(access))).json()

    uri = urlparse(enrolment["provisioning_uri"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert parse_qs(uri.query)["secret"] == [enrolment["secret"]]
    assert parse_qs(uri.query)["issuer"] == ["Tongban 440300"]
    assert "110105%2A%2A%2A%2A%2A%2A%2A%2A002X" in uri.path
    assert PERSON not in enrolment["provisioning_uri"]


async def test_a_wrong_confirmation_code_enables_nothing(identity: SignInDriver) -> None:
    secret, access = await _enrol(identity)
    wrong = "000000" if code(secret) != "000000" else "111111"

    response = await identity.client.post(
        "/v1/me/totp/confirm", json={"code": wrong}, headers=_bearer(access)
    )

    assert response.status_code == 400
    assert response.json()["type"].endswith("/totp-invalid")
    assert (await identity.login(PERSON)).status_code == 200


async def test_once_enabled_login_needs_a_code_and_says_so_after_the_password(
    identity: SignInDriver, secret: str
) -> None:
    without = await identity.login(PERSON)
    wrong_password = await identity.login(PERSON, "not the password", totp=code(secret, 1))

    assert without.status_code == 401
    assert without.json()["type"].endswith("/totp-required")
    # A wrong password never learns that the account has TOTP.
    assert wrong_password.status_code == 401
    assert wrong_password.json()["type"].endswith("/login-failed")


async def test_login_with_a_current_code_adds_otp_to_amr(
    identity: SignInDriver, secret: str
) -> None:
    # The confirming code's step is spent; the next step's code is within the window.
    tokens = await identity.tokens(PERSON, totp=code(secret, 1))

    claims = await identity.verify(tokens["access_token"])
    assert claims.amr == ("pwd", "otp")


async def test_a_code_is_never_accepted_twice_nor_an_older_one(
    identity: SignInDriver, secret: str
) -> None:
    step = int(time.time() // 30) + 1
    assert (await identity.login(PERSON, totp=totp_at(secret, step * 30))).status_code == 200

    replayed = await identity.login(PERSON, totp=totp_at(secret, step * 30))
    older = await identity.login(PERSON, totp=totp_at(secret, (step - 1) * 30))

    for refused in (replayed, older):
        assert refused.status_code == 401
        assert refused.json()["type"].endswith("/totp-invalid")
    [(last_step,)] = await identity.sql("SELECT totp_last_step FROM totp_credentials")
    assert last_step == step


async def test_the_confirming_code_cannot_log_in(identity: SignInDriver, secret: str) -> None:
    [(confirmed_step,)] = await identity.sql("SELECT totp_last_step FROM totp_credentials")

    response = await identity.login(PERSON, totp=totp_at(secret, confirmed_step * 30))

    assert response.status_code == 401


async def test_a_second_enrolment_is_refused_once_enabled(
    identity: SignInDriver, secret: str
) -> None:
    access = (await identity.tokens(PERSON, totp=code(secret, 1)))["access_token"]

    again = await identity.client.post("/v1/me/totp", headers=_bearer(access))

    assert again.status_code == 409
    [(audit_types,)] = await identity.sql(
        "SELECT array_agg(type ORDER BY at) FROM audit_events WHERE type LIKE 'totp%'"
    )
    assert audit_types == ["totp_enabled"]
