"""Rate limits under a burst, through the gateway: past the bucket, 429 problem+json with
``Retry-After``; a refused request writes nothing; a burst of one kind does not throttle
another caller's requests.

The limits are the gateway's built-in ones (``routes.yaml``): credentials (sign-up, login,
token) a burst of 10 per address, public lookups 40, everything else 100 per caller.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from security_world import FULL, World, assert_problem, resident_id

pytestmark = pytest.mark.node


def _burst(count: int, request: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(request, range(count)))


def _assert_throttled(answers: list[httpx.Response]) -> list[httpx.Response]:
    throttled = [a for a in answers if a.status_code == 429]
    assert throttled, f"no 429 in a burst of {len(answers)}"
    for answer in throttled:
        assert_problem(answer, 429)
        assert int(answer.headers["retry-after"]) >= 1
    return throttled


def test_a_burst_of_sign_ups_is_throttled_and_the_throttled_ones_write_nothing(
    world: World,
) -> None:
    before = world.writes.snapshot()

    def sign_up(n: int) -> httpx.Response:
        return world.api.post(
            "/identity/v1/persons",
            json={
                "resident_id": resident_id(500 + n),
                "name": "突发注册",
                "phone": "13800138000",
                "password": "correct horse battery staple",
            },
        )

    answers = _burst(30, sign_up)

    throttled = _assert_throttled(answers)
    created = [a for a in answers if a.status_code == 201]
    assert len(created) + len(throttled) == len(answers)
    assert len(created) <= 12  # a burst of 10, and what refilled (1/s) while it ran
    after = world.writes.snapshot()
    assert after["tongban_identity.persons"] - before["tongban_identity.persons"] == len(created)


@pytest.mark.skipif(not FULL, reason="make security only: 200 requests")
def test_a_burst_of_public_lookups_is_throttled(world: World) -> None:
    before = world.writes.snapshot()

    answers = _burst(
        120, lambda n: world.api.get("/registration/v1/businesses", params={"q": "深圳"})
    )

    _assert_throttled(answers)
    assert {a.status_code for a in answers} <= {200, 429}
    assert world.writes.snapshot() == before


@pytest.mark.skipif(not FULL, reason="make security only: 30 password checks")
def test_a_burst_of_logins_is_throttled_without_touching_other_callers(world: World) -> None:
    alice = world.headers(world.alice)  # signed in before the burst, on identity's own port
    password = world.bob.password

    answers = _burst(
        30,
        lambda n: world.api.post(
            "/identity/v1/login",
            json={"resident_id": world.bob.resident_id, "password": password},
        ),
    )
    for_alice = world.api.get("/registration/v1/applications", headers=alice)

    _assert_throttled(answers)
    assert {a.status_code for a in answers} <= {200, 429}
    assert for_alice.status_code == 200, for_alice.text
