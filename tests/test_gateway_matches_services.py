"""The gateway's built-in route table agrees with what each service says about its own routes.

A service declares who may call each route (a bearer token or not) in its OpenAPI document; the
gateway checks tokens at the edge from its route configuration. If the two disagree, a public
route (sign-up, the public register, licence verification) is refused at the edge, or a
protected one is let through unchecked by the gateway. Both documents are read here, so a route
added to a service without its gateway entry fails this test.
"""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI

from tongban_exchange.main import create_app as create_exchange
from tongban_gateway.routes import RouteTable
from tongban_gateway.settings import GatewaySettings
from tongban_identity.main import create_app as create_identity
from tongban_registration.main import create_app as create_registration

SERVICES = {
    "identity": create_identity,
    "registration": create_registration,
    "exchange": create_exchange,
}
# Served to operators on the service's own port; the gateway does not route them at all.
OPERATIONS_ONLY = {"/metrics"}


def operations(app: FastAPI) -> list[tuple[str, str, bool]]:
    """(method, a concrete path, needs a bearer token) for every documented operation."""
    found = []
    for path, methods in app.openapi()["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "91440300MA5G0X0X0X", path)
        for method, operation in methods.items():
            bearer = any("HTTPBearer" in need for need in operation.get("security", []))
            found.append((method.upper(), concrete, bearer))
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_the_gateway_lets_through_unchecked_exactly_the_routes_a_service_leaves_public(
    service: str,
) -> None:
    table = RouteTable.from_settings(GatewaySettings())
    disagreements = []
    for method, path, bearer in operations(SERVICES[service]()):
        if path in OPERATIONS_ONLY:
            continue
        matched = table.match(method, f"/api/{service}{path}")
        assert matched is not None, f"{service} is not routed"
        route, _ = matched
        if route.public == bearer:
            wanted = "protected" if bearer else "public"
            disagreements.append(f"{method} /api/{service}{path}: the service says {wanted}")

    assert not disagreements, "\n".join(disagreements)
