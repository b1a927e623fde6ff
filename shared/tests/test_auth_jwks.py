"""JwksCache against a real JWKS server: one refetch for a new kid, floods of invented kids cost
identity one request per interval, and an unreachable identity is a 503, not a 401."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tongban_kit.auth import AccessClaims, JwksCache, verify_access_token
from tongban_kit.auth.testing import LocalIssuer, LocalKey
from tongban_kit.errors import ServiceUnavailable, Unauthorized
from tongban_kit.infra import free_port


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as issuer:
        yield issuer


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def verify(token: str, issuer: LocalIssuer, jwks: JwksCache) -> AccessClaims:
    return await verify_access_token(
        token, jwks=jwks, issuer=issuer.issuer, audience=issuer.audience
    )


async def test_an_unknown_kid_is_refused_after_exactly_one_refetch(
    issuer: LocalIssuer, http: httpx.AsyncClient
) -> None:
    jwks = JwksCache(issuer.jwks_url, http, min_refetch_s=0.2)
    await verify(issuer.mint(), issuer, jwks)
    await asyncio.sleep(0.25)

    with pytest.raises(Unauthorized, match="does not publish"):
        await verify(issuer.mint(key=LocalKey()), issuer, jwks)

    assert issuer.requests == 2  # the first fetch, and one refetch for the unknown kid


async def test_a_key_published_after_the_cache_filled_is_found_by_one_refetch(
    issuer: LocalIssuer, http: httpx.AsyncClient
) -> None:
    jwks = JwksCache(issuer.jwks_url, http, min_refetch_s=0.2)
    await verify(issuer.mint(), issuer, jwks)
    rotated = LocalKey()
    issuer.publish(rotated)
    await asyncio.sleep(0.25)

    verified = await verify(issuer.mint(key=rotated), issuer, jwks)

    assert verified.sub == "person-7f3a"
    assert issuer.requests == 2


async def test_a_flood_of_invented_kids_costs_identity_one_request_per_interval(
    issuer: LocalIssuer, http: httpx.AsyncClient
) -> None:
    jwks = JwksCache(issuer.jwks_url, http, min_refetch_s=1.0)
    await verify(issuer.mint(), issuer, jwks)
    await asyncio.sleep(1.05)
    forged = [issuer.mint(key=LocalKey()) for _ in range(50)]

    results = await asyncio.gather(
        *(verify(token, issuer, jwks) for token in forged), return_exceptions=True
    )
    for token in forged:  # and again, one after the other
        with pytest.raises(Unauthorized):
            await verify(token, issuer, jwks)

    assert all(isinstance(result, Unauthorized) for result in results)
    assert issuer.requests == 2  # the first fetch, then one refetch shared by all 100


async def test_an_unreachable_jwks_is_a_503_not_a_401(
    issuer: LocalIssuer, http: httpx.AsyncClient
) -> None:
    jwks = JwksCache(f"http://127.0.0.1:{free_port()}/.well-known/jwks.json", http)

    with pytest.raises(ServiceUnavailable, match="cannot be fetched"):
        await verify(issuer.mint(), issuer, jwks)


async def test_a_failing_jwks_server_is_a_503(issuer: LocalIssuer, http: httpx.AsyncClient) -> None:
    issuer.status = 500
    jwks = JwksCache(issuer.jwks_url, http)

    with pytest.raises(ServiceUnavailable, match="HTTP 500"):
        await verify(issuer.mint(), issuer, jwks)


async def test_a_service_starting_before_identity_is_ready_a_second_after_identity_is(
    issuer: LocalIssuer, http: httpx.AsyncClient
) -> None:
    """Holding no key yet, the cache asks again within a second, not after min_refetch_s:
    a node starting all services at once must not answer 503 for ten seconds."""
    issuer.status = 503
    jwks = JwksCache(issuer.jwks_url, http, min_refetch_s=60)
    refresher = asyncio.create_task(jwks.run())
    try:
        await asyncio.sleep(0.2)
        with pytest.raises(RuntimeError, match="no keys"):
            await jwks.ready()
        issuer.status = 200  # identity is up

        await asyncio.sleep(1.5)

        await jwks.ready()
        assert (await verify(issuer.mint(), issuer, jwks)).sub == "person-7f3a"
    finally:
        refresher.cancel()


async def test_held_keys_outlive_a_short_identity_outage(
    issuer: LocalIssuer, http: httpx.AsyncClient
) -> None:
    jwks = JwksCache(issuer.jwks_url, http, refresh_s=0.1, min_refetch_s=0.1)
    await verify(issuer.mint(), issuer, jwks)
    issuer.status = 503
    await asyncio.sleep(0.15)

    verified = await verify(issuer.mint(), issuer, jwks)

    assert verified.sub == "person-7f3a"
    assert issuer.requests == 2  # it did try to refresh


async def test_held_keys_are_dropped_when_identity_stays_away_too_long(
    issuer: LocalIssuer, http: httpx.AsyncClient
) -> None:
    jwks = JwksCache(issuer.jwks_url, http, refresh_s=0.1, min_refetch_s=0.1, max_stale_s=0.2)
    await verify(issuer.mint(), issuer, jwks)
    issuer.status = 503
    await asyncio.sleep(0.25)

    with pytest.raises(ServiceUnavailable):
        await verify(issuer.mint(), issuer, jwks)


async def test_keys_that_are_not_es256_signature_keys_are_ignored(
    issuer: LocalIssuer, http: httpx.AsyncClient
) -> None:
    issuer.published.append({**LocalKey().jwk, "use": "enc"})
    issuer.published.append({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"})
    issuer.published.append({"kty": "EC", "kid": "broken", "crv": "P-256", "x": "AA", "y": "AA"})
    jwks = JwksCache(issuer.jwks_url, http)

    await jwks.refresh()

    assert jwks.key_ids == {issuer.key.kid}
