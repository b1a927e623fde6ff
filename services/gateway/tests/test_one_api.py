"""One API: the services' OpenAPI merged at /openapi.json, docs at /docs, metrics per route."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

from tongban_gateway.openapi import merge
from tongban_kit.testing import eventually

if TYPE_CHECKING:
    from conftest import OpenGateway

BEARER = {"HTTPBearer": {"type": "http", "scheme": "bearer"}}


def service_document(problem_field: str, path: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "paths": {
            path: {
                "get": {
                    "operationId": "read",
                    "tags": ["things"],
                    "responses": {
                        "404": {
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Problem"}
                                }
                            }
                        }
                    },
                }
            },
            "/metrics": {"get": {"operationId": "metrics"}},
        },
        "components": {
            "schemas": {"Problem": {"properties": {problem_field: {"type": "string"}}}},
            "securitySchemes": BEARER,
        },
    }


def test_paths_are_prefixed_and_colliding_components_renamed() -> None:
    own = {"openapi": "3.1.0", "info": {"title": "gw"}, "paths": {"/healthz": {}}}

    merged = merge(
        own,
        {
            "identity": service_document("detail", "/v1/persons"),
            "registration": service_document("reason", "/v1/businesses"),
        },
    )

    assert set(merged["paths"]) == {
        "/healthz",
        "/api/identity/v1/persons",
        "/api/registration/v1/businesses",
    }
    identity = merged["paths"]["/api/identity/v1/persons"]["get"]
    registration = merged["paths"]["/api/registration/v1/businesses"]["get"]
    assert (identity["operationId"], registration["operationId"]) == (
        "identity_read",
        "registration_read",
    )
    assert identity["tags"] == ["identity: things"]

    def ref(operation: dict[str, Any]) -> str:
        return operation["responses"]["404"]["content"]["application/json"]["schema"]["$ref"]

    schemas = merged["components"]["schemas"]
    assert ref(identity) == "#/components/schemas/Problem"
    assert ref(registration) == "#/components/schemas/Registration_Problem"
    assert schemas["Problem"]["properties"].keys() == {"detail"}
    assert schemas["Registration_Problem"]["properties"].keys() == {"reason"}
    assert merged["components"]["securitySchemes"] == BEARER  # the same: shared


class Thing(BaseModel):
    name: str


def thing_service(path: str) -> FastAPI:
    app = FastAPI(title=path)

    @app.get(path, response_model=Thing)
    async def read() -> Thing:
        return Thing(name=path)

    return app


async def test_the_merged_openapi_and_docs_are_served(
    open_gateway: OpenGateway, serve_asgi: Callable[..., contextlib.AbstractContextManager[str]]
) -> None:
    with (
        serve_asgi(thing_service("/v1/persons")) as identity,
        serve_asgi(thing_service("/v1/businesses")) as registration,
    ):
        async with open_gateway(identity_url=identity, registration_url=registration) as gateway:
            document = (
                await eventually(
                    lambda: gateway.get("/openapi.json"),
                    lambda r: "/api/registration/v1/businesses" in r.json()["paths"],
                    timeout=10,
                )
            ).json()
            docs = await gateway.get("/docs")

    assert "/api/identity/v1/persons" in document["paths"]
    assert "/healthz" in document["paths"]
    assert document["x-tongban-missing"] == ["exchange"]  # a stand-in, no OpenAPI of its own
    assert "Thing" in document["components"]["schemas"]
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text


async def test_metrics_count_and_time_each_route_by_status(gateway: httpx.AsyncClient) -> None:
    await gateway.get("/api/identity/v1/persons/p-1")
    await gateway.get("/api/identity/.well-known/jwks.json")
    await gateway.get("/api/exchange/v1/x", headers={"authorization": "Bearer junk"})

    metrics = (await gateway.get("/metrics")).text

    assert (
        'tongban_http_requests_total{method="GET",route="/api/identity/{path}",status="200"} 1.0'
        in metrics
    )
    assert 'route="/api/identity/.well-known/**",status="200"} 1.0' in metrics
    assert 'route="/api/exchange/{path}",status="401"} 1.0' in metrics
    assert (
        'tongban_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/api/identity/{path}"}'
        in metrics
    )
