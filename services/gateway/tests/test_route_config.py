"""The route configuration: the built-in routes, an operator's file, and files refused at start."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tongban_gateway.config import RouteConfigError
from tongban_gateway.main import create_app
from tongban_gateway.routes import MethodNotAllowed, RouteTable
from tongban_gateway.settings import GatewaySettings

if TYPE_CHECKING:
    from conftest import OpenGateway, StandIn


def route_for(table: RouteTable, method: str, path: str) -> tuple[str, bool]:
    matched = table.match(method, path)
    assert matched is not None
    return matched[0].path, matched[0].public


@pytest.mark.parametrize(
    ("method", "path", "public"),
    [
        ("POST", "/api/identity/v1/persons", True),
        ("GET", "/api/identity/v1/persons/p-1", False),
        ("POST", "/api/identity/v1/login", True),
        ("POST", "/api/identity/oauth/token", True),
        ("POST", "/api/identity/oauth/revoke", True),
        ("GET", "/api/identity/.well-known/jwks.json", True),
        ("GET", "/api/identity/.well-known/openid-configuration", True),
        ("GET", "/api/identity/v1/legal-persons/91440300MA5FXXXX0X", True),
        ("GET", "/api/identity/v1/legal-persons/x/secrets", False),
        ("POST", "/api/identity/v1/logout", False),
        ("GET", "/api/registration/v1/businesses/91440300MA5FXXXX0X", True),
        ("POST", "/api/registration/v1/businesses", False),
        ("GET", "/api/registration/v1/licences/verify", True),
        ("GET", "/api/registration/v1/licences/verify-signature", True),
        ("POST", "/api/registration/v1/licences/verify", False),
        ("GET", "/api/registration/v1/businesses/91440300MA5FXXXX0X/licence", True),
        ("GET", "/api/registration/v1/register/steps/2", False),
        ("GET", "/api/exchange/healthz", True),
        ("GET", "/api/exchange/v1/records/businesses/x", False),
    ],
)
def test_the_built_in_routes_declare_the_public_ones(method: str, path: str, public: bool) -> None:
    table = RouteTable.from_settings(GatewaySettings())

    assert route_for(table, method, path)[1] is public


def test_an_unrouted_service_matches_nothing() -> None:
    assert RouteTable.from_settings(GatewaySettings()).match("GET", "/api/billing/v1") is None


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


YAML = """
rate_limits:
  slow: {rate_per_s: 0.5, burst: 2}
upstreams:
  - name: billing
    url: http://billing.internal:9100/base
    methods: [GET, POST]
    timeout_s: 7
    max_body_bytes: 2048
    rate_limit: slow
    routes:
      - {path: "/v1/invoices/{id}/pdf", methods: [GET], public: true, timeout_s: 60}
"""


def test_an_operators_yaml_file_replaces_the_built_in_routes(tmp_path: Path) -> None:
    settings = GatewaySettings(routes_file=write(tmp_path, "routes.yaml", YAML))

    table = RouteTable.from_settings(settings)

    assert [u.name for u in table.upstreams] == ["billing"]
    pdf = table.match("GET", "/api/billing/v1/invoices/42/pdf")
    other = table.match("GET", "/api/billing/v1/invoices/42")
    assert pdf is not None
    assert other is not None
    assert (pdf[0].public, pdf[0].timeout_s, pdf[0].max_body_bytes, pdf[0].rate_limit) == (
        True,
        60,
        2048,
        "slow",
    )
    assert (other[0].public, other[0].timeout_s, other[1]) == (False, 7, "v1/invoices/42")
    assert (
        str(other[0].upstream.url_for(other[1]))
        == "http://billing.internal:9100/base/v1/invoices/42"
    )
    with pytest.raises(MethodNotAllowed):
        table.match("DELETE", "/api/billing/v1/invoices/42")


def test_a_json_file_is_read_too(tmp_path: Path) -> None:
    document = {"upstreams": [{"name": "identity", "routes": [{"path": "/x", "public": True}]}]}
    settings = GatewaySettings(routes_file=write(tmp_path, "r.json", json.dumps(document)))

    table = RouteTable.from_settings(settings)

    assert route_for(table, "GET", "/api/identity/x") == ("/api/identity/x", True)
    assert str(table.upstreams[0].base_url) == settings.identity_url


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("upstreams: [{name: identity, routs: []}]", "upstreams.0.routs: Extra inputs"),
        ("upstreams: [{name: identity, methods: [FETCH]}]", "upstreams.0.methods.0"),
        ("upstreams: [{name: billing}]", "upstream 'billing' needs a url"),
        ("upstreams: [{name: b, url: 'ftp://x'}]", "upstreams\\[b\\].url='ftp://x'"),
        ("upstreams: [{name: identity, rate_limit: gold}]", "rate_limit 'gold' is not in"),
        ("upstreams: [{name: identity}, {name: identity}]", "declared twice"),
        ("upstreams: [{name: identity, routes: [{path: 'x'}]}]", "routes.0.path"),
        ("upstreams: [{name: identity, routes: [{path: '/a{b'}]}]", "written {name}"),
        ("upstreams: [{name: identity", "is not YAML/JSON"),
        ("- just a list", "invalid"),
    ],
)
def test_a_bad_file_is_refused_naming_the_mistake(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "routes.yaml", text)

    with pytest.raises(RouteConfigError, match=message) as caught:
        RouteTable.from_settings(GatewaySettings(routes_file=path))

    assert str(path) in str(caught.value) or "upstream" in str(caught.value)


def test_the_gateway_refuses_to_start_with_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RouteConfigError, match="cannot be read"):
        create_app(GatewaySettings(routes_file=tmp_path / "nope.yaml"))


def routes_file(tmp_path: Path, stand_ins: dict[str, StandIn], rules: str) -> Path:
    return write(
        tmp_path,
        "routes.yaml",
        f"""
upstreams:
  - name: identity
    url: {stand_ins["identity"].url}
    methods: [GET, POST]
    routes:
{rules}
""",
    )


async def test_a_method_the_upstream_does_not_take_is_a_405_naming_the_allowed(
    open_gateway: OpenGateway, ready: dict[str, StandIn], tmp_path: Path
) -> None:
    path = routes_file(tmp_path, ready, "      - {path: /x, public: true}")
    async with open_gateway(routes_file=path) as gateway:
        response = await gateway.delete("/api/identity/v1/anything")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_routes_own_timeout_applies(
    open_gateway: OpenGateway, ready: dict[str, StandIn], tmp_path: Path
) -> None:
    path = routes_file(tmp_path, ready, "      - {path: /slow, timeout_s: 0.2}")
    async with open_gateway(routes_file=path) as gateway:
        response = await gateway.get("/api/identity/slow")

    assert response.status_code == 504
    assert response.json()["service"] == "identity"


async def test_a_routes_own_body_limit_applies(
    open_gateway: OpenGateway, ready: dict[str, StandIn], tmp_path: Path
) -> None:
    path = routes_file(tmp_path, ready, "      - {path: /small, max_body_bytes: 100}")
    async with open_gateway(routes_file=path) as gateway:
        small = await gateway.post("/api/identity/small", content=b"x" * 100)
        big = await gateway.post("/api/identity/small", content=b"x" * 101)
        elsewhere = await gateway.post("/api/identity/big", content=b"x" * 101)

    assert (small.status_code, big.status_code, elsewhere.status_code) == (200, 413, 200)
    assert big.json()["limit_bytes"] == 100


async def test_a_route_may_take_more_than_the_node_limit_and_only_that_route(
    open_gateway: OpenGateway, ready: dict[str, StandIn], tmp_path: Path
) -> None:
    """An upload route above TONGBAN_MAX_BODY_BYTES (1 MiB): the gateway's outer limit
    follows the largest route, each route keeps its own."""
    path = routes_file(tmp_path, ready, "      - {path: /upload, max_body_bytes: 2097152}")
    body = b"x" * (1536 * 1024)
    async with open_gateway(routes_file=path) as gateway:
        uploaded = await gateway.post("/api/identity/upload", content=body)
        too_big = await gateway.post("/api/identity/upload", content=body * 2)
        elsewhere = await gateway.post("/api/identity/other", content=body)

    assert uploaded.status_code == 200, uploaded.text
    assert (too_big.status_code, too_big.json()["limit_bytes"]) == (413, 2097152)
    assert (elsewhere.status_code, elsewhere.json()["limit_bytes"]) == (413, 1048576)


async def test_a_streamed_body_over_a_routes_limit_never_completes_upstream(
    open_gateway: OpenGateway, ready: dict[str, StandIn], tmp_path: Path
) -> None:
    path = routes_file(tmp_path, ready, "      - {path: /streamed, max_body_bytes: 100}")

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 60

    async with open_gateway(routes_file=path) as gateway:
        response = await gateway.post("/api/identity/streamed", content=chunked())

    assert response.status_code == 413
    assert response.json()["limit_bytes"] == 100
    assert ready["identity"].saw("/streamed") == []
