"""The gateway in front of real stand-in services: routing, headers, streaming, failures."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import httpx
import pytest

from tongban_kit.observability.context import parse_traceparent
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import eventually

if TYPE_CHECKING:  # fixtures come by name; the types are for the reader and the checker
    from conftest import OpenGateway, StandIn

CHUNK = 64 * 1024

PROBLEM_JSON = "application/problem+json"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def unique(prefix: str = "/v1/probe") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.mark.parametrize("service", ["identity", "registration", "exchange"])
async def test_routes_by_prefix_stripping_it_and_keeping_the_query(
    gateway: httpx.AsyncClient, service: str
) -> None:
    response = await gateway.get(f"/api/{service}/v1/persons?name=a%20b&page=2")

    assert response.status_code == 200
    seen = response.json()
    assert (seen["service"], seen["path"], seen["query"]) == (
        service,
        "/v1/persons",
        "name=a%20b&page=2",
    )


async def test_request_id_and_trace_reach_the_service_and_come_back(
    gateway: httpx.AsyncClient,
) -> None:
    caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    response = await gateway.get(
        "/api/identity/v1/trace", headers={"x-request-id": "req-42", "traceparent": caller}
    )

    seen = response.json()["headers"]
    upstream_parent = parse_traceparent(seen["traceparent"])
    assert upstream_parent is not None
    assert seen["x-request-id"] == "req-42"
    assert upstream_parent.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert upstream_parent.span_id != "00f067aa0ba902b7"  # the gateway's own span, not the caller's
    assert response.headers["x-request-id"] == "req-42"
    assert response.headers["traceparent"] == seen["traceparent"]


async def test_a_request_id_is_made_when_the_caller_sends_none(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.get("/api/identity/v1/no-id")

    seen = response.json()["headers"]
    assert len(response.headers["x-request-id"]) == 32
    assert seen["x-request-id"] == response.headers["x-request-id"]
    assert seen["traceparent"] == response.headers["traceparent"]
    assert parse_traceparent(seen["traceparent"]) is not None


async def test_forwarding_headers_are_the_gateways_not_the_callers(
    gateway: httpx.AsyncClient, ready: dict[str, StandIn]
) -> None:
    response = await gateway.get(
        "/api/registration/v1/who",
        headers={"x-forwarded-for": "6.6.6.6", "x-forwarded-host": "evil.test"},
    )

    seen = response.json()["headers"]
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == "gateway.test"
    assert seen["host"] == httpx.URL(ready["registration"].url).netloc.decode()


async def test_hop_by_hop_headers_are_not_forwarded(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get(
        "/api/identity/v1/hops",
        headers={
            "connection": "keep-alive, x-hop",
            "x-hop": "1",
            "keep-alive": "timeout=5",
            "te": "trailers",
            "proxy-authorization": "Basic eDp5",
        },
    )

    seen = response.json()["headers"]
    assert not {"x-hop", "keep-alive", "te", "proxy-authorization"} & seen.keys()
    assert seen["authorization"] == gateway.headers["authorization"]  # end-to-end: kept


async def _sha256_and_size(client: httpx.AsyncClient, url: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    async with client.stream("GET", url) as response:
        assert response.status_code == 200
        async for chunk in response.aiter_raw():
            size += len(chunk)
            digest.update(chunk)
    return digest.hexdigest(), size


async def test_a_large_response_streams_through_untouched(
    served_gateway: str, ready: dict[str, StandIn], auth_headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient(headers=auth_headers) as client:
        through = await _sha256_and_size(client, f"{served_gateway}/api/exchange/megabytes/20")
        direct = await _sha256_and_size(client, f"{ready['exchange'].url}/megabytes/20")

    assert through == direct
    assert through[1] == 20 * 1024 * 1024


async def test_response_chunks_are_relayed_before_the_service_finishes(
    served_gateway: str, ready: dict[str, StandIn], auth_headers: dict[str, str]
) -> None:
    async with (
        httpx.AsyncClient(headers=auth_headers, base_url=served_gateway, timeout=5) as client,
        client.stream("GET", "/api/identity/gated") as response,
    ):
        chunks = response.aiter_raw()
        first = await anext(chunks)
        ready["identity"].gate.set()  # the service sends the rest only now
        rest = b"".join([chunk async for chunk in chunks])

    assert (first, rest) == (b"first", b"-second")


async def test_a_caller_hanging_up_mid_response_releases_the_service(
    served_gateway: str, ready: dict[str, StandIn], auth_headers: dict[str, str]
) -> None:
    async with (
        httpx.AsyncClient(headers=auth_headers, base_url=served_gateway) as client,
        client.stream("GET", "/api/exchange/endless") as response,
    ):
        await anext(response.aiter_raw())
    # Leaving the block closed the caller's connection; the gateway must close its own.

    assert await asyncio.to_thread(ready["exchange"].hung_up.wait, 5)


async def test_a_request_body_streams_to_the_service(
    served_gateway: str, auth_headers: dict[str, str]
) -> None:
    blob = bytes(range(256)) * (8 * 1024 * 1024 // 256)

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(blob), CHUNK):
            yield blob[start : start + CHUNK]

    async with httpx.AsyncClient(headers=auth_headers, base_url=served_gateway) as client:
        response = await client.post("/api/registration/v1/upload", content=chunked())

    seen = response.json()
    assert (seen["body_bytes"], seen["body_sha256"]) == (
        len(blob),
        hashlib.sha256(blob).hexdigest(),
    )


async def test_a_declared_body_over_the_limit_is_refused_before_the_service_sees_it(
    gateway: httpx.AsyncClient, ready: dict[str, StandIn]
) -> None:
    path = unique()

    response = await gateway.post(f"/api/identity{path}", content=b"x" * (1_048_576 + 1))

    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_JSON
    assert ready["identity"].saw(path) == []


async def test_a_streamed_body_over_the_limit_is_refused_and_never_completes_upstream(
    served_gateway: str, ready: dict[str, StandIn], auth_headers: dict[str, str]
) -> None:
    path = unique()

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(17 * 1024 * 1024 // CHUNK):
            yield b"x" * CHUNK

    async with httpx.AsyncClient(headers=auth_headers, base_url=served_gateway) as client:
        response = await client.post(f"/api/identity{path}", content=chunked())

    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_JSON
    assert ready["identity"].saw(path) == []


async def test_an_unreachable_service_is_a_503_problem_naming_it(
    open_gateway: OpenGateway, dead_url: str
) -> None:
    async with open_gateway(exchange_url=dead_url) as gateway:
        response = await gateway.post("/api/exchange/v1/records", json={})

    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["service"] == "exchange"
    assert "exchange" in problem["detail"]


async def test_a_service_too_slow_to_answer_is_a_504_problem(open_gateway: OpenGateway) -> None:
    async with open_gateway(upstream_timeout_s=0.2) as gateway:
        response = await gateway.get("/api/registration/slow")

    assert response.status_code == 504
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["service"] == "registration"


async def test_an_unknown_api_path_is_a_404_problem(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/api/foo/v1/bar")

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["detail"] == "No service is routed at /api/foo/v1/bar."


@pytest.mark.parametrize("path", ["/api/identity/metrics", "/api/identity/metrics/"])
async def test_a_services_internal_endpoints_are_not_routed(
    gateway: httpx.AsyncClient, ready: dict[str, StandIn], path: str
) -> None:
    response = await gateway.get(path)

    assert response.status_code == 404
    assert ready["identity"].saw("/metrics") == []


async def test_dot_segments_cannot_step_out_of_a_prefix(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/api/identity/%2e%2e/registration/v1/persons")

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON


async def test_a_services_redirect_points_back_through_the_gateway(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.get("/api/identity/redirect")

    assert response.status_code == 307
    assert response.headers["location"] == "http://gateway.test/api/identity/v1/target?x=1"


async def test_cookies_reach_the_caller_and_are_not_kept_for_the_next(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.get("/api/identity/cookies")
    gateway.cookies.clear()  # the caller forgets them; the gateway must not remember them either
    after = await gateway.get("/api/identity/v1/after-cookies")

    assert [c.split(";")[0] for c in response.headers.get_list("set-cookie")] == ["a=1", "b=2"]
    assert "cookie" not in after.json()["headers"]


async def test_no_server_banner_is_relayed(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/api/identity/v1/banner")

    assert "server" not in response.headers


async def test_readyz_is_200_when_every_service_is_ready(gateway: httpx.AsyncClient) -> None:
    # Ready once identity's keys are held (fetched in the background at start).
    response = await eventually(
        lambda: gateway.get("/readyz"), lambda r: r.status_code == 200, timeout=5
    )

    assert response.status_code == 200
    assert response.json()["checks"] == {
        "identity_keys": "ok",
        "identity": "ok",
        "registration": "ok",
        "exchange": "ok",
    }


async def test_readyz_is_503_when_a_service_is_down(
    open_gateway: OpenGateway, dead_url: str
) -> None:
    async with open_gateway(identity_url=dead_url) as gateway:
        response = await gateway.get("/readyz")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["identity"].startswith("failed")
    assert checks["registration"] == "ok"


async def test_readyz_is_503_when_a_service_is_not_ready(
    gateway: httpx.AsyncClient, ready: dict[str, StandIn]
) -> None:
    ready["exchange"].ready = False

    response = await gateway.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["exchange"] == "failed: UpstreamNotReady"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/identity/v1/persons", None),  # relayed from a service
        ("GET", "/healthz", None),  # the gateway's own
        ("GET", "/api/nowhere", None),  # a 404 problem
        ("POST", "/api/identity/v1/persons", b"x" * (1_048_576 + 1)),  # a 413 from middleware
    ],
)
async def test_security_headers_are_on_every_response(
    gateway: httpx.AsyncClient, method: str, path: str, body: bytes | None
) -> None:
    response = await gateway.request(method, path, content=body)

    assert {name: response.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
    assert "strict-transport-security" not in response.headers


async def test_hsts_is_sent_in_production(
    open_gateway: OpenGateway, node_trusting: Callable[..., NodeSettings]
) -> None:
    async with open_gateway(node=node_trusting(environment="production")) as gateway:
        response = await gateway.get("/healthz")

    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_one_json_access_line_per_request_names_the_route(
    open_gateway: OpenGateway,
    node_trusting: Callable[..., NodeSettings],
    capfd: pytest.CaptureFixture[str],
) -> None:
    async with open_gateway(node=node_trusting(log_format="json")) as gateway:
        capfd.readouterr()
        response = await gateway.get(
            "/api/identity/v1/persons/p-1", headers={"x-request-id": "log-1"}
        )
        await asyncio.sleep(0.2)  # lines are written by the logging thread, off the event loop
        lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line]

    access = [line for line in lines if line["logger"] == "tongban.access"]
    assert response.status_code == 200
    assert len(access) == 1
    assert access[0]["request_id"] == "log-1"
    assert access[0]["http_route"] == "/api/identity/{path}"
    assert access[0]["http_status"] == 200
    assert "authorization" not in json.dumps(access[0]).lower()
