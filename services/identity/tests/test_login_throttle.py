"""Back-off against password guessing: per account (by blind index, so unknown accounts too)
and per client address; 429 with Retry-After, never a permanent lockout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from tongban_identity.sessions import throttle
from tongban_identity.sessions.testing import SignInDriver, resident_id, running_identity
from tongban_kit.settings import NodeSettings

PERSON = resident_id(2)
NOBODY = resident_id(999)
WRONG = "not the password at all"


@pytest.fixture
async def identity(make_database, node_settings: NodeSettings) -> AsyncIterator[SignInDriver]:  # type: ignore[no-untyped-def]
    url = await make_database("tongban_identity:migrations")
    async with running_identity(
        url,
        node_settings,
        run_workers=False,
        login_backoff_free_failures=3,
        login_backoff_address_free_failures=6,
        login_backoff_base_s=3.0,
    ) as driver:
        yield driver


async def _fail(identity: SignInDriver, resident: str, times: int, host: str) -> list[int]:
    async with identity.client_at(host) as client:
        return [
            (await identity.login(resident, WRONG, client=client)).status_code for _ in range(times)
        ]


async def test_repeated_failures_are_answered_429_with_retry_after_known_or_unknown(
    identity: SignInDriver,
) -> None:
    await identity.sign_up(PERSON)

    for _ in range(3):  # side by side, so both back-offs start at about the same moment
        assert await _fail(identity, PERSON, 1, "10.0.0.1") == [401]
        assert await _fail(identity, NOBODY, 1, "10.0.0.2") == [401]
    async with identity.client_at("10.0.0.3") as client:
        known = await identity.login(PERSON, WRONG, client=client)
        unknown = await identity.login(NOBODY, WRONG, client=client)

    for refused in (known, unknown):
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "3"
        assert refused.headers["content-type"] == "application/problem+json"
    assert {k: v for k, v in known.json().items() if k != "request_id"} == {
        k: v for k, v in unknown.json().items() if k != "request_id"
    }


async def test_the_right_password_is_also_refused_until_the_back_off_has_passed(
    identity: SignInDriver,
) -> None:
    await identity.sign_up(PERSON)
    await _fail(identity, PERSON, 3, "10.0.0.1")

    too_soon = await identity.login(PERSON)
    await asyncio.sleep(int(too_soon.headers["retry-after"]) + 0.1)
    later = await identity.login(PERSON)

    assert too_soon.status_code == 429
    assert later.status_code == 200, later.text


async def test_a_success_resets_the_account_so_the_next_mistakes_are_free_again(
    identity: SignInDriver,
) -> None:
    await identity.sign_up(PERSON)
    assert await _fail(identity, PERSON, 2, "10.0.0.1") == [401, 401]
    await identity.tokens(PERSON)

    assert await _fail(identity, PERSON, 3, "10.0.0.1") == [401, 401, 401]
    [(failures,)] = await identity.sql(
        "SELECT failures FROM login_throttle WHERE key LIKE 'account:%'"
    )
    assert failures == 3


async def test_the_back_off_doubles_with_each_further_failure(identity: SignInDriver) -> None:
    await _fail(identity, NOBODY, 3, "10.0.0.1")
    await identity.sql("UPDATE login_throttle SET next_allowed_at = now()")  # waited it out
    await _fail(identity, NOBODY, 1, "10.0.0.2")

    refused = await identity.login(NOBODY, WRONG)

    assert refused.headers["retry-after"] == "6"
    [(stored,)] = await identity.sql("SELECT failures FROM login_throttle WHERE key LIKE 'acc%'")
    assert stored == 4  # refused attempts are not counted


async def test_one_address_guessing_at_many_accounts_is_slowed_down_others_are_not(
    identity: SignInDriver,
) -> None:
    await identity.sign_up(PERSON)
    for n in range(6):
        assert await _fail(identity, resident_id(100 + n), 1, "10.6.6.6") == [401]

    async with identity.client_at("10.6.6.6") as sprayer:
        refused = await identity.login(PERSON, client=sprayer)
    async with identity.client_at("10.0.0.9") as someone_else:
        allowed = await identity.login(PERSON, client=someone_else)

    assert refused.status_code == 429
    assert allowed.status_code == 200


async def test_a_burst_of_parallel_guesses_meets_the_back_off_too(
    make_database,  # type: ignore[no-untyped-def]
    node_settings: NodeSettings,
) -> None:
    url = await make_database("tongban_identity:migrations")
    # A long first step, so that however slowly the burst is served, none of it outlasts it.
    async with running_identity(
        url,
        node_settings,
        run_workers=False,
        login_backoff_free_failures=3,
        login_backoff_base_s=60,
    ) as identity:
        await identity.sign_up(PERSON)
        async with identity.client_at("10.0.0.1") as client:
            answers = await asyncio.gather(
                *(identity.login(PERSON, f"guess number {n}", client=client) for n in range(12))
            )

    statuses = sorted(answer.status_code for answer in answers)
    # The free failures are counted before any check, so at most three guesses are tried
    # (under heavy load a racing attempt may be throttled early: fewer, never more).
    assert set(statuses) <= {401, 429}, statuses
    assert 1 <= statuses.count(401) <= 3, statuses


async def test_attempts_taking_the_lock_out_of_order_are_not_refused_without_failures(
    identity: SignInDriver,
) -> None:
    """Two logins from one address (say, behind the gateway): the one that began first takes
    the throttle lock second. With no back-off due, it must not be told it came too early."""
    backoff = throttle.Backoff(20, 1.0, 900.0)
    keys = {throttle.address_key("10.0.0.1"): backoff}
    began_first = datetime.now(UTC)
    began_second = began_first + timedelta(milliseconds=50)

    async with identity.app.state.sessionmaker() as session, session.begin():
        second = await throttle.reserve(session, keys, now=began_second)
    async with identity.app.state.sessionmaker() as session, session.begin():
        first = await throttle.reserve(session, keys, now=began_first)

    assert (second, first) == (None, None)
