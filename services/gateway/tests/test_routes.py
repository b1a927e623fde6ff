"""The route table: which URL a public path maps to, and which settings are refused."""

from __future__ import annotations

import httpx
import pytest

from tongban_gateway.main import create_app
from tongban_gateway.routes import RouteConfigError, RouteTable, Upstream
from tongban_gateway.settings import GatewaySettings


def test_each_service_gets_its_prefix_and_url() -> None:
    table = RouteTable.from_settings(GatewaySettings(registration_url="http://reg.internal:9002"))

    assert [(u.prefix, str(u.base_url)) for u in table.upstreams] == [
        ("/api/identity/", "http://127.0.0.1:8001"),
        ("/api/registration/", "http://reg.internal:9002"),
        ("/api/exchange/", "http://127.0.0.1:8003"),
    ]


@pytest.mark.parametrize(
    ("base", "path", "query", "expected"),
    [
        ("http://h:8001", "v1/persons", b"a=1&b=%20", "http://h:8001/v1/persons?a=1&b=%20"),
        ("http://h:8001", "", b"", "http://h:8001/"),
        ("http://h/identity/", "v1/persons", b"", "http://h/identity/v1/persons"),
        ("http://h:8001", "v1/a b", b"", "http://h:8001/v1/a%20b"),
    ],
)
def test_the_prefix_is_replaced_by_the_services_base_url(
    base: str, path: str, query: bytes, expected: str
) -> None:
    assert str(Upstream("identity", httpx.URL(base)).url_for(path, query)) == expected


@pytest.mark.parametrize(
    "path", ["../registration/v1", "v1/./x", "metrics", "metrics/", "/metrics"]
)
def test_dot_segments_and_internal_endpoints_are_not_exposed(path: str) -> None:
    assert not Upstream("identity", httpx.URL("http://h:8001")).exposes(path)


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("http://h:8001/v1/x?y=1", "https://gw/api/identity/v1/x?y=1"),
        ("/v1/x", "https://gw/api/identity/v1/x"),
        ("https://elsewhere.test/x", "https://elsewhere.test/x"),
        ("//elsewhere.test/x", "//elsewhere.test/x"),
        ("v1/relative", "v1/relative"),
    ],
)
def test_redirects_into_the_service_are_pointed_through_the_gateway(
    location: str, expected: str
) -> None:
    upstream = Upstream("identity", httpx.URL("http://h:8001"))

    assert upstream.public_location(location, "https://gw/api/identity") == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("localhost:8001", "expected http(s)://host"),
        ("ftp://files.internal", "expected http(s)://host"),
        ("http://", "expected http(s)://host"),
        ("http://h:99999", "port 99999 is out of range"),
        ("http://h:8001/?debug=1", "a query, fragment or credentials"),
        ("http://[::1", "Invalid port"),
    ],
)
def test_a_bad_service_url_is_refused_naming_the_setting(value: str, reason: str) -> None:
    with pytest.raises(RouteConfigError, match="TONGBAN_GATEWAY_EXCHANGE_URL") as caught:
        RouteTable.from_settings(GatewaySettings(exchange_url=value))

    assert reason in str(caught.value)


def test_credentials_in_a_service_url_stay_out_of_the_error() -> None:
    with pytest.raises(RouteConfigError) as caught:
        RouteTable.from_settings(GatewaySettings(identity_url="http://svc:hunter22@h:8001"))

    assert "hunter22" not in str(caught.value)


def test_the_gateway_refuses_to_start_with_a_bad_service_url() -> None:
    with pytest.raises(RouteConfigError, match="TONGBAN_GATEWAY_IDENTITY_URL"):
        create_app(GatewaySettings(identity_url="identity:8001"))


def test_service_urls_are_read_from_the_gateways_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TONGBAN_GATEWAY_IDENTITY_URL", "http://identity.internal:8001")

    table = RouteTable.from_settings(GatewaySettings())

    assert str(table.upstreams[0].base_url) == "http://identity.internal:8001"
