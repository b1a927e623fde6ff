"""Browser callers: the CORS allowlist of portal origins, and HSTS only behind TLS."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from conftest import OpenGateway

PORTAL = "https://portal.example.gov.cn"


async def test_a_portal_origin_may_call_cross_origin(open_gateway: OpenGateway) -> None:
    async with open_gateway(cors_origins=[PORTAL]) as gateway:
        preflight = await gateway.options(
            "/api/registration/v1/businesses",
            headers={
                "origin": PORTAL,
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )
        actual = await gateway.get("/api/registration/v1/x", headers={"origin": PORTAL})

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == PORTAL
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert preflight.headers["x-content-type-options"] == "nosniff"
    assert actual.headers["access-control-allow-origin"] == PORTAL
    exposed = actual.headers["access-control-expose-headers"].lower()
    assert {"x-request-id", "traceparent", "retry-after", "ratelimit"} <= set(exposed.split(", "))


async def test_another_origin_gets_no_cors_grant(open_gateway: OpenGateway) -> None:
    async with open_gateway(cors_origins=[PORTAL]) as gateway:
        preflight = await gateway.options(
            "/api/registration/v1/businesses",
            headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
        )
        actual = await gateway.get(
            "/api/registration/v1/x", headers={"origin": "https://evil.example"}
        )

    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in actual.headers


async def test_without_an_allowlist_no_origin_is_granted(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/api/registration/v1/x", headers={"origin": PORTAL})

    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_hsts_is_sent_when_the_request_came_over_tls(open_gateway: OpenGateway) -> None:
    async with open_gateway() as gateway:
        plain = await gateway.get("/healthz")
        secure = await gateway.get("https://gateway.test/healthz")

    assert "strict-transport-security" not in plain.headers
    assert secure.headers["strict-transport-security"].startswith("max-age=63072000")
