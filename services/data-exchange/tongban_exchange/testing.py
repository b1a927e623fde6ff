"""Test helpers for data-exchange and whole-node tests: events, grant requests, a
department's webhook receiver (a small real HTTP server that can go down and come back), the
central directory as a real server, and a node served on a port that can go down."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tongban_kit.auth.node_keys import CENTRAL_NODE, development_node_key, public_jwk
from tongban_kit.auth.node_trust import sign_directory
from tongban_kit.events import CloudEvent

USCC = "91440305000000019K"
RESIDENT_ID = "11010519491231002X"
BUSINESS_REGISTERED = "gov.tongban.registration.business.registered.v1"
ALL_SCOPES = "exchange:subscribe exchange:approve exchange:publish exchange:query"

#: Headers for a department's token: ``as_department("tax")``.
Tokens = Callable[..., dict[str, str]]


def business_registered(*, node: str = "440300", **overrides: Any) -> CloudEvent:
    """A valid business-registered event of ``node``; ``overrides`` replace data fields."""
    data: dict[str, Any] = {
        "business_id": "6f1c1e57-5f6b-4a43-9b11-111111111111",
        "uscc": USCC,
        "name": "深圳市腾飞科技有限公司",
        "division_code": "440305",
        "registered_at": "2026-11-26T10:00:00+00:00",
        "legal_representative": {"name": "张三", "resident_id": RESIDENT_ID},
    }
    data.update(overrides)
    return CloudEvent.new(
        BUSINESS_REGISTERED, source=f"/nodes/{node}/registration", subject=data["uscc"], data=data
    )


TAX_STATUS = "gov.tongban.tax.status.record.v1"


async def tax_status_dataset(client: httpx.AsyncClient, operator: dict[str, str]) -> str:
    """Create tax's record dataset of a business's tax status (as an operator); its name."""
    response = await client.post(
        "/v1/datasets",
        json={
            "name": TAX_STATUS,
            "owner": "tax",
            "title": "Tax status of a business",
            "schema": {
                "type": "object",
                "additionalProperties": False,
                "required": ["status"],
                "properties": {
                    "status": {"enum": ["good", "arrears"]},
                    "arrears_yuan": {"type": "integer", "minimum": 0},
                    "officer": {"type": "string"},
                },
            },
            "sharing": "unconditional",
        },
        headers=operator,
    )
    assert response.status_code == 201, response.text
    return TAX_STATUS


async def grant(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    dataset: str = BUSINESS_REGISTERED,
    fields: list[str],
    mode: str = "pull",
    url: str | None = None,
    personal: bool = False,
    status: int = 201,
) -> dict[str, Any]:
    delivery: dict[str, Any] = {"mode": mode}
    if url:
        delivery["url"] = url
    response = await client.post(
        "/v1/grants",
        json={
            "dataset": dataset,
            "purpose": "tax registration of new businesses",
            "legal_basis": "税收征收管理法 第十五条",
            "fields": fields,
            "personal": personal,
            "delivery": delivery,
        },
        headers=headers,
    )
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class WebhookReceiver:
    """A department's webhook endpoint: a real HTTP server that can go down and come back."""

    port: int = field(default_factory=free_port)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/tongban"

    async def _hook(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        return Response(status_code=204)

    async def start(self) -> None:
        app = Starlette(routes=[Route("/hooks/tongban", self._hook, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:  # noqa: ASYNC110 - uvicorn only offers a flag
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)
        self._server, self._task = None, None


@dataclass
class DirectoryServer:
    """The central directory as a real HTTP server: ``nodes`` (code → key), signed afresh with
    the central development key on every fetch, as central's identity would."""

    nodes: dict[str, ec.EllipticCurvePrivateKey]
    port: int = field(default_factory=free_port)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/tongban-directory.jwt"

    async def _document(self, request: Request) -> Response:
        entries = [
            {
                "code": code,
                "name": code,
                "gateway_url": f"http://127.0.0.1:9/{code}",
                "token_issuer": f"http://127.0.0.1:9/{code}",
                "jwks": {"keys": [public_jwk(key)]},
                "status": "active",
            }
            for code, key in self.nodes.items()
        ]
        document = sign_directory(development_node_key(CENTRAL_NODE), entries)
        return Response(document, media_type="application/jwt")

    async def start(self) -> None:
        app = Starlette(
            routes=[Route("/.well-known/tongban-directory.jwt", self._document, methods=["GET"])]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:  # noqa: ASYNC110 - uvicorn only offers a flag
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)
        self._server, self._task = None, None


@dataclass
class ServedNode:
    """A service app served on a fixed port, which can be stopped (the link is down) and
    started again with a fresh app on the same database."""

    make_app: Callable[[], FastAPI]
    port: int = field(default_factory=free_port)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        config = uvicorn.Config(
            self.make_app(), host="127.0.0.1", port=self.port, log_config=None, lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("uvicorn stopped during start-up")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, 15)
        self._server, self._task = None, None
