"""Rate limits: a token bucket per caller and rate-limit class.

A bucket holds up to ``burst`` tokens and refills at ``rate_per_s``; each request takes one, and
an empty bucket means 429. Buckets live in this process (``LocalBuckets``) or, when Redis is
configured, in Redis (``RedisBuckets``) where one Lua script reads, refills and takes a token
atomically on Redis's clock, so every gateway process draws on the same buckets.

The answer carries the IETF draft headers (draft-ietf-httpapi-ratelimit-headers):
``RateLimit-Policy: "<class>";q=<burst>;w=<seconds to refill>`` and
``RateLimit: "<class>";r=<tokens left>;t=<seconds until full>``, plus ``Retry-After`` on a 429.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tongban_gateway.config import RateLimitClass

__all__ = ["Buckets", "Decision", "LocalBuckets", "RedisBuckets"]

logger = logging.getLogger("tongban.gateway.ratelimit")

_MAX_LOCAL_BUCKETS = 100_000


@dataclass(frozen=True, slots=True)
class Decision:
    """One request's draw on a bucket."""

    allowed: bool
    tokens: float  # left after this request
    name: str
    limit: RateLimitClass

    @property
    def retry_after_s(self) -> int:
        """Whole seconds until one token is back (0 when allowed)."""
        if self.allowed:
            return 0
        return max(1, math.ceil((1 - self.tokens) / self.limit.rate_per_s))

    def headers(self) -> list[tuple[bytes, bytes]]:
        limit = self.limit
        window = math.ceil(limit.burst / limit.rate_per_s)
        full_in = math.ceil((limit.burst - self.tokens) / limit.rate_per_s)
        headers = [
            (
                b"ratelimit-policy",
                f'"{self.name}";q={limit.burst};w={window}'.encode(),
            ),
            (b"ratelimit", f'"{self.name}";r={int(self.tokens)};t={full_in}'.encode()),
        ]
        if not self.allowed:
            headers.append((b"retry-after", str(self.retry_after_s).encode()))
        return headers


class Buckets(Protocol):
    async def take(self, name: str, limit: RateLimitClass, caller: str) -> Decision: ...

    async def aclose(self) -> None: ...


class LocalBuckets:
    """Buckets in this process's memory: right for one gateway process, not for several."""

    def __init__(self) -> None:
        self._state: dict[str, tuple[float, float]] = {}  # key -> (tokens, monotonic time)

    async def take(self, name: str, limit: RateLimitClass, caller: str) -> Decision:
        key = f"{name}:{caller}"
        now = time.monotonic()
        tokens, at = self._state.get(key, (float(limit.burst), now))
        tokens = min(float(limit.burst), tokens + (now - at) * limit.rate_per_s)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        if len(self._state) >= _MAX_LOCAL_BUCKETS and key not in self._state:
            self._forget_full(now, limit)
        self._state[key] = (tokens, now)
        return Decision(allowed, tokens, name, limit)

    def _forget_full(self, now: float, limit: RateLimitClass) -> None:
        # A bucket idle long enough to be full again is the same as no bucket.
        idle = limit.burst / limit.rate_per_s
        self._state = {k: v for k, v in self._state.items() if now - v[1] < idle}

    async def aclose(self) -> None:
        pass


# KEYS[1] the bucket; ARGV rate per second, burst. Returns {allowed, tokens left as a string}
# (Redis would truncate a Lua number to an integer).
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class RedisBuckets:
    """Buckets in Redis, shared by every gateway process pointed at it.

    If Redis cannot be reached the request is let through (and the failure logged): a limiter
    outage must not take the node's API down with it.
    """

    def __init__(self, url: str, *, prefix: str = "tongban:gateway:rl:") -> None:
        self._redis: Redis = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._take = self._redis.register_script(_TAKE)
        self._prefix = prefix
        self._warned_at = 0.0

    async def take(self, name: str, limit: RateLimitClass, caller: str) -> Decision:
        key = f"{self._prefix}{name}:{caller}"
        try:
            allowed, tokens = await self._take(keys=[key], args=[limit.rate_per_s, limit.burst])
        except (RedisError, OSError) as exc:
            if time.monotonic() - self._warned_at > 10:
                self._warned_at = time.monotonic()
                logger.warning("rate limits not applied: Redis unreachable (%s)", exc)
            return Decision(True, float(limit.burst), name, limit)
        return Decision(bool(allowed), float(tokens), name, limit)

    async def aclose(self) -> None:
        await self._redis.aclose()
