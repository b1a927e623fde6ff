"""Replay protection for one-time tokens (the ``jti`` of node assertions): the first use of a
``jti`` is let through, every later one until it expires is not.

Two guards answer the same question (``ReplayGuard.first_use``):

``MemoryReplayGuard``
    this process remembers (bounded; expired entries are dropped when it fills). A replay
    reaching another process or replica of the node is not caught.
``RedisReplayGuard``
    one ``SET <key> 1 NX EXAT <expires_at>`` per check, so every process and replica pointed at
    the same Redis shares what was seen, and Redis forgets a ``jti`` when it expires.

``replay_guard`` picks one from a service's Redis URL. Keys are
``<kafka namespace>:<node code>:<scope>:jti:<jti>``: nodes or test runs sharing one Redis keep
apart, and so do the verifiers of one node (the gateway and data-exchange each check the same
assertion of a forwarded national event once, each in its own scope).

If Redis cannot be reached, or the memory guard is full of unexpired entries, the check fails
closed: ``ReplayCheckUnavailable`` (503 with ``Retry-After``). Unlike rate limits, which let
requests through while Redis is down, accepting an assertion that cannot be checked would let
a captured one be replayed on every replica; the sending node retries a 503, and only
node-to-node requests are affected.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tongban_kit.errors import ServiceUnavailable
from tongban_kit.settings import NodeSettings

__all__ = [
    "MemoryReplayGuard",
    "RedisReplayGuard",
    "ReplayCheckUnavailable",
    "ReplayGuard",
    "replay_guard",
    "replay_prefix",
]

logger = logging.getLogger("tongban.auth.replay")

_MEMORY_LIMIT = 100_000
_RETRY_AFTER = {"retry-after": "5"}


class ReplayCheckUnavailable(ServiceUnavailable):
    """Whether a ``jti`` was used before cannot be told right now (503)."""


class ReplayGuard(Protocol):
    async def first_use(self, jti: str, expires_at: float) -> bool:
        """True the first time ``jti`` is seen, and remember it until ``expires_at`` (Unix
        time); False while it is remembered. ``ReplayCheckUnavailable`` if it cannot tell."""
        ...

    async def aclose(self) -> None: ...


class MemoryReplayGuard:
    """The ``jti`` values this process has seen, each until it expires, at most ``limit`` at
    once."""

    def __init__(self, *, limit: int = _MEMORY_LIMIT) -> None:
        self._limit = limit
        self._seen: dict[str, float] = {}

    async def first_use(self, jti: str, expires_at: float) -> bool:
        now = time.time()
        if self._seen.get(jti, 0.0) > now:
            return False
        if len(self._seen) >= self._limit:
            self._seen = {k: v for k, v in self._seen.items() if v > now}
            if len(self._seen) >= self._limit:
                raise ReplayCheckUnavailable(
                    "Too many node assertions at once; try again shortly.", headers=_RETRY_AFTER
                )
        self._seen[jti] = expires_at
        return True

    async def aclose(self) -> None:
        self._seen.clear()


class RedisReplayGuard:
    """The ``jti`` values seen by every process using this Redis, under ``prefix``."""

    def __init__(self, url: str, *, prefix: str) -> None:
        # The rate limiter's timeouts: a Redis that does not answer fails the check quickly.
        self._redis: Redis = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.prefix = prefix
        self._warned_at = -math.inf

    async def first_use(self, jti: str, expires_at: float) -> bool:
        try:
            # EXAT: Redis drops the key at the assertion's own expiry, whatever its clock
            # says of "now"; NX: only the first SET of a key answers OK.
            stored = await self._redis.set(
                self.prefix + jti, b"1", nx=True, exat=math.ceil(expires_at)
            )
        except (RedisError, OSError) as exc:
            if time.monotonic() - self._warned_at > 10:  # once every 10 s, not per request
                self._warned_at = time.monotonic()
                logger.warning(
                    "node assertion refused: Redis unreachable for the replay check (%s)", exc
                )
            raise ReplayCheckUnavailable(
                "Node assertions cannot be checked for replays right now; try again shortly.",
                headers=_RETRY_AFTER,
            ) from None
        return bool(stored)

    async def aclose(self) -> None:
        await self._redis.aclose()


def replay_prefix(node: NodeSettings, scope: str) -> str:
    """Where ``scope``'s keys live in Redis for this node."""
    return f"{node.kafka_namespace}:{node.node_code}:{scope}:jti:"


def replay_guard(redis_url: str | None, *, node: NodeSettings, scope: str) -> ReplayGuard:
    """The Redis guard when ``redis_url`` is set (shared by every process of the node),
    otherwise this process's own."""
    if redis_url:
        return RedisReplayGuard(redis_url, prefix=replay_prefix(node, scope))
    return MemoryReplayGuard()
