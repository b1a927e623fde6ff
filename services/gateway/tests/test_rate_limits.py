"""Rate limits: a token bucket per caller, 429 with Retry-After and the RateLimit headers, and
one limit across gateway processes sharing Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tongban_kit.auth.testing import LocalIssuer

if TYPE_CHECKING:
    from conftest import OpenGateway, SpawnGateways, StandIn

REDIS_URL = "redis://127.0.0.1:6379/0"


def limited_routes(
    tmp_path: Path, stand_ins: dict[str, StandIn], *, burst: int
) -> tuple[Path, str]:
    """Routes where everything under identity draws on a fresh, slowly refilled class."""
    name = f"t{uuid.uuid4().hex[:10]}"  # fresh buckets, in Redis too
    path = tmp_path / "routes.yaml"
    path.write_text(
        f"""
rate_limits:
  {name}: {{rate_per_s: 0.01, burst: {burst}}}
upstreams:
  - name: identity
    url: {stand_ins["identity"].url}
    rate_limit: {name}
    routes:
      - {{path: "/open/**", public: true}}
"""
    )
    return path, name


async def test_a_burst_over_the_limit_gets_429_with_retry_after(
    open_gateway: OpenGateway, ready: dict[str, StandIn], tmp_path: Path
) -> None:
    routes, name = limited_routes(tmp_path, ready, burst=3)
    path = f"/v1/burst-{uuid.uuid4().hex[:8]}"
    async with open_gateway(routes_file=routes) as gateway:
        responses = [await gateway.get(f"/api/identity{path}") for _ in range(5)]

    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    refused = responses[3]
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-policy"] == f'"{name}";q=3;w=300'
    assert refused.headers["ratelimit"].startswith(f'"{name}";r=0;t=')
    assert responses[0].headers["ratelimit"].startswith(f'"{name}";r=2;')
    assert len(ready["identity"].saw(path)) == 3


async def test_each_subject_has_its_own_bucket(
    open_gateway: OpenGateway, ready: dict[str, StandIn], tmp_path: Path, token_issuer: LocalIssuer
) -> None:
    routes, _ = limited_routes(tmp_path, ready, burst=1)
    alice = {"authorization": f"Bearer {token_issuer.mint(sub='alice')}"}
    bob = {"authorization": f"Bearer {token_issuer.mint(sub='bob')}"}
    department = {
        "authorization": "Bearer "
        + token_issuer.mint(
            sub="dept-client",
            client_id="dept-client",
            department="440300-AMR",
            department_name="Market regulation",
            drop=("acr", "amr", "auth_time"),
        )
    }
    async with open_gateway(routes_file=routes) as gateway:
        statuses = [
            (await gateway.get("/api/identity/v1/x", headers=headers)).status_code
            for headers in (alice, alice, bob, department, department)
        ]

    assert statuses == [200, 429, 200, 200, 429]


async def test_anonymous_callers_are_limited_by_ip(
    open_gateway: OpenGateway, ready: dict[str, StandIn], tmp_path: Path
) -> None:
    routes, _ = limited_routes(tmp_path, ready, burst=2)
    async with open_gateway(routes_file=routes) as gateway:
        del gateway.headers["authorization"]
        statuses = [(await gateway.get("/api/identity/open/x")).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


def test_the_limit_holds_across_two_gateway_processes_sharing_redis(
    ready: dict[str, StandIn], tmp_path: Path, spawn_gateways: SpawnGateways
) -> None:
    routes, _ = limited_routes(tmp_path, ready, burst=6)
    env = {"TONGBAN_GATEWAY_ROUTES_FILE": str(routes), "TONGBAN_GATEWAY_REDIS_URL": REDIS_URL}
    with spawn_gateways(2, **env) as [(first, _), (second, _)]:

        async def burst() -> list[int]:
            async with httpx.AsyncClient() as client:
                calls = [
                    client.get(f"{url}/api/identity/open/shared") for url in (first, second) * 6
                ]
                return [response.status_code for response in await asyncio.gather(*calls)]

        started = time.monotonic()
        statuses = asyncio.run(burst())

    assert time.monotonic() - started < 60  # 0.01 tokens/s: well under one token refilled
    assert sorted(statuses) == [200] * 6 + [429] * 6


@pytest.mark.parametrize("with_redis", [False, True])
async def test_local_and_redis_buckets_refill_the_same_way(with_redis: bool) -> None:
    """The in-process buckets and the Redis ones apply the same rule."""
    from tongban_gateway.config import RateLimitClass
    from tongban_gateway.ratelimit import LocalBuckets, RedisBuckets

    buckets = RedisBuckets(REDIS_URL) if with_redis else LocalBuckets()
    limit = RateLimitClass(rate_per_s=20, burst=2)
    caller = uuid.uuid4().hex
    try:
        first = [(await buckets.take("unit", limit, caller)).allowed for _ in range(3)]
        await asyncio.sleep(0.15)  # three tokens' worth of refill, capped by the burst
        later = [(await buckets.take("unit", limit, caller)).allowed for _ in range(3)]
    finally:
        await buckets.aclose()

    assert first == [True, True, False]
    assert later == [True, True, False]
