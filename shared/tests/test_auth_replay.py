"""Replay guards: a ``jti`` is let through once until it expires, in this process or, with
Redis, in every process sharing it; a guard that cannot tell refuses (503)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest

from tongban_kit.auth.replay import (
    MemoryReplayGuard,
    RedisReplayGuard,
    ReplayCheckUnavailable,
    ReplayGuard,
    replay_guard,
)
from tongban_kit.settings import NodeSettings

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["memory", "redis"])
async def guard(request: pytest.FixtureRequest) -> AsyncIterator[ReplayGuard]:
    made: ReplayGuard = (
        MemoryReplayGuard()
        if request.param == "memory"
        else RedisReplayGuard(REDIS_URL, prefix=f"t{uuid.uuid4().hex[:12]}:")
    )
    yield made
    await made.aclose()


async def test_a_jti_is_let_through_once(guard: ReplayGuard) -> None:
    until = time.time() + 60

    assert await guard.first_use("310000:a", until) is True
    assert await guard.first_use("310000:a", until) is False
    assert await guard.first_use("310000:b", until) is True


async def test_an_expired_jti_is_forgotten(guard: ReplayGuard) -> None:
    assert await guard.first_use("310000:a", time.time() - 1) is True
    assert await guard.first_use("310000:a", time.time() + 60) is True


async def test_a_full_memory_guard_makes_room_from_expired_entries_or_refuses() -> None:
    guard = MemoryReplayGuard(limit=2)
    await guard.first_use("gone", time.time() - 1)
    await guard.first_use("kept", time.time() + 60)

    assert await guard.first_use("new", time.time() + 60) is True
    with pytest.raises(ReplayCheckUnavailable) as refused:
        await guard.first_use("one too many", time.time() + 60)
    assert refused.value.status == 503


async def test_processes_sharing_redis_share_what_they_have_seen() -> None:
    node = NodeSettings(kafka_namespace=f"t{uuid.uuid4().hex[:12]}")
    one = replay_guard(REDIS_URL, node=node, scope="gateway")
    other = replay_guard(REDIS_URL, node=node, scope="gateway")
    elsewhere = replay_guard(REDIS_URL, node=node, scope="exchange")
    until = time.time() + 60
    try:
        assert await one.first_use("310000:a", until) is True
        assert await other.first_use("310000:a", until) is False
        # Another verifier of the node checks the same assertion once too.
        assert await elsewhere.first_use("310000:a", until) is True
    finally:
        for guard in (one, other, elsewhere):
            await guard.aclose()


async def test_without_redis_each_process_keeps_its_own() -> None:
    node = NodeSettings()
    one, other = (replay_guard(None, node=node, scope="gateway") for _ in range(2))

    assert await one.first_use("310000:a", time.time() + 60) is True
    assert await other.first_use("310000:a", time.time() + 60) is True


async def test_an_unreachable_redis_refuses_with_503() -> None:
    guard = RedisReplayGuard("redis://127.0.0.1:1/0", prefix="t:")
    try:
        with pytest.raises(ReplayCheckUnavailable) as refused:
            await guard.first_use("310000:a", time.time() + 60)
    finally:
        await guard.aclose()
    assert refused.value.status == 503
    assert refused.value.headers == {"retry-after": "5"}
