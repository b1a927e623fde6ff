"""Real HTTP for the gateway tests: small stand-in services served by uvicorn on free ports.

Each stand-in records what reached it and answers with what it saw, so a test can compare what
the caller sent, what the service received and what came back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from tongban_gateway.main import create_app
from tongban_gateway.settings import GatewaySettings
from tongban_kit.auth.testing import LocalIssuer
from tongban_kit.settings import NodeSettings

CHUNK = 64 * 1024


@dataclass
class StandIn:
    """A stand-in service: its URL, the requests it finished reading, and switches for tests."""

    name: str
    url: str = ""
    seen: list[dict[str, Any]] = field(default_factory=list)
    ready: bool = True
    gate: threading.Event = field(default_factory=threading.Event)
    hung_up: threading.Event = field(default_factory=threading.Event)

    def saw(self, path: str) -> list[dict[str, Any]]:
        return [record for record in self.seen if record["path"] == path]


def stand_in_app(state: StandIn) -> Starlette:
    async def echo(request: Request) -> Response:
        digest = hashlib.sha256()
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                digest.update(chunk)
        except ClientDisconnect:
            return Response(status_code=400)  # cut off mid-body: nothing was received
        record = {
            "service": state.name,
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": dict(request.headers),
            "body_bytes": size,
            "body_sha256": digest.hexdigest(),
        }
        state.seen.append(record)
        return JSONResponse(record)

    async def readyz(request: Request) -> Response:
        return JSONResponse({}, status_code=200 if state.ready else 503)

    async def metrics(request: Request) -> Response:
        state.seen.append({"path": "/metrics"})
        return Response("internal")

    async def megabytes(request: Request) -> Response:
        count = int(request.path_params["count"])

        async def body() -> AsyncIterator[bytes]:
            for index in range(count * 1024 * 1024 // CHUNK):
                yield bytes([index % 256]) * CHUNK

        return StreamingResponse(body(), media_type="application/octet-stream")

    async def gated(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            yield b"first"
            opened = await anyio.to_thread.run_sync(state.gate.wait, 10)
            yield b"-second" if opened else b"-gate never opened"

        return StreamingResponse(body(), media_type="text/plain")

    async def events(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            yield b"event: first\ndata: 1\n\n"
            opened = await anyio.to_thread.run_sync(state.gate.wait, 10)
            yield b"event: second\ndata: 2\n\n" if opened else b"event: timeout\n\n"

        return StreamingResponse(body(), media_type="text/event-stream")

    async def endless(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            try:
                while True:
                    yield b"x" * CHUNK
                    await asyncio.sleep(0)
            finally:
                state.hung_up.set()

        return StreamingResponse(body(), media_type="application/octet-stream")

    async def slow(request: Request) -> Response:
        await asyncio.sleep(2)
        return Response("late")

    async def redirect(request: Request) -> Response:
        # Absolute, naming the service's own address, as Starlette's slash redirects do.
        return RedirectResponse(f"{request.base_url}v1/target?x=1", status_code=307)

    async def cookies(request: Request) -> Response:
        response = Response("cookies")
        response.set_cookie("a", "1")
        response.set_cookie("b", "2")
        return response

    return Starlette(
        routes=[
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/megabytes/{count:int}", megabytes),
            Route("/gated", gated),
            Route("/endless", endless),
            Route("/events", events),
            Route("/slow", slow),
            Route("/redirect", redirect),
            Route("/cookies", cookies),
            Route("/{path:path}", echo, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
        ]
    )


@contextlib.contextmanager
def serve(
    app: Any,
    *,
    lifespan: Literal["on", "off"] = "off",
    server_header: bool = True,
    sock: socket.socket | None = None,
) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on ``sock`` (bound, not yet listening) or a
    free 127.0.0.1 port; yield its URL."""
    if sock is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan=lifespan,
        log_level="warning",
        access_log=False,
        server_header=server_header,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="session")
def stand_ins() -> Iterator[dict[str, StandIn]]:
    """The three services the gateway routes to, each a real server."""
    states = {name: StandIn(name) for name in ("identity", "registration", "exchange")}
    with contextlib.ExitStack() as stack:
        for state in states.values():
            state.url = stack.enter_context(serve(stand_in_app(state)))
        yield states


@pytest.fixture
def ready(stand_ins: dict[str, StandIn]) -> Iterator[dict[str, StandIn]]:
    """The stand-ins, every one ready, and every gate closed, again after the test too."""
    for state in stand_ins.values():
        state.ready = True
        state.gate.clear()
        state.hung_up.clear()
    yield stand_ins
    for state in stand_ins.values():
        state.ready = True
        state.gate.set()  # releases a stand-in still streaming for a failed test


@pytest.fixture(scope="session")
def dead_url() -> Iterator[str]:
    """A port bound but not listening: connecting to it is refused for the whole session."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def trusting(issuer: LocalIssuer, **fields: Any) -> NodeSettings:
    """Node settings whose token checks trust ``issuer``; keyword arguments override fields."""
    values: dict[str, Any] = {
        "token_issuer": issuer.issuer,
        "token_audience": issuer.audience,
        "jwks_url": issuer.jwks_url,
        "log_format": "text",
    }
    values.update(fields)
    return NodeSettings(**values)


def gateway_settings(
    stand_ins: dict[str, StandIn], issuer: LocalIssuer, **overrides: Any
) -> GatewaySettings:
    """Settings routing to the stand-ins and trusting ``issuer``; keyword arguments override
    any field."""
    fields: dict[str, Any] = {f"{name}_url": state.url for name, state in stand_ins.items()}
    fields["node"] = trusting(issuer)
    fields["redis_url"] = None  # in-process buckets unless a test asks, whatever REDIS_URL says
    fields.update(overrides)
    return GatewaySettings(**fields)


@pytest.fixture(scope="session")
def node_trusting(token_issuer: LocalIssuer) -> Callable[..., NodeSettings]:
    """``trusting`` bound to the session's issuer."""
    return functools.partial(trusting, token_issuer)


@pytest.fixture(scope="session")
def auth_headers(token_issuer: LocalIssuer) -> dict[str, str]:
    """A valid person's access token for the whole session, as request headers."""
    token = token_issuer.mint(sub="person-gw", exp=int(time.time()) + 3600)
    return {"authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def _in_process(
    settings: GatewaySettings, headers: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=transport, base_url="http://gateway.test", headers=headers
        ) as client,
    ):
        yield client


OpenGateway = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def open_gateway(
    ready: dict[str, StandIn], token_issuer: LocalIssuer, auth_headers: dict[str, str]
) -> OpenGateway:
    """Open a gateway app in this process (ASGI transport, lifespan running) in front of the
    stand-ins, its client sending a valid token; keyword arguments override settings fields."""

    def opener(**overrides: Any) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
        return _in_process(gateway_settings(ready, token_issuer, **overrides), auth_headers)

    return opener


@pytest.fixture
async def gateway(open_gateway: OpenGateway) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway in front of the three ready stand-ins."""
    async with open_gateway() as client:
        yield client


@pytest.fixture(scope="session")
def served_gateway(stand_ins: dict[str, StandIn], token_issuer: LocalIssuer) -> Iterator[str]:
    """The gateway served by uvicorn on a real socket (the ASGI transport buffers bodies),
    accepting bodies up to 16 MiB."""
    node = trusting(token_issuer, max_body_bytes=16 * 1024 * 1024)
    app = create_app(gateway_settings(stand_ins, token_issuer, node=node))
    # Served the way the node launcher serves it: no uvicorn banner of its own.
    with serve(app, lifespan="on", server_header=False) as url:
        yield url


@contextlib.contextmanager
def gateway_processes(
    stand_ins: dict[str, StandIn], issuer: LocalIssuer, count: int = 1, **env: str
) -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    """``count`` gateways, each in a process of its own started the way the node launcher
    starts it (all at once), in front of the stand-ins and trusting ``issuer``; ``env`` adds
    variables. Yields each one's URL and process once all are ready."""
    inherited = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL",)}
    variables = {
        **inherited,
        "TONGBAN_TOKEN_ISSUER": issuer.issuer,
        "TONGBAN_TOKEN_AUDIENCE": issuer.audience,
        "TONGBAN_JWKS_URL": issuer.jwks_url,
        "TONGBAN_LOG_LEVEL": "WARNING",
        **{f"TONGBAN_GATEWAY_{name.upper()}_URL": state.url for name, state in stand_ins.items()},
        **env,
    }
    started: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for _ in range(count):
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            command = [sys.executable, "-m", "uvicorn", "tongban_gateway.main:create_app"]
            command += ["--factory", "--port", str(port), "--no-access-log", "--no-server-header"]
            process = subprocess.Popen(command, env=variables, stdin=subprocess.DEVNULL)
            started.append((f"http://127.0.0.1:{port}", process))
        deadline = time.monotonic() + 60  # imports alone take seconds on a busy machine
        for url, process in started:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the gateway process at {url} did not become ready")
                time.sleep(0.1)
        yield started
    finally:
        for _, process in started:
            process.terminate()
        for _, process in started:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


SpawnGateways = Callable[
    ..., contextlib.AbstractContextManager[list[tuple[str, "subprocess.Popen[bytes]"]]]
]


@pytest.fixture
def spawn_gateways(ready: dict[str, StandIn], token_issuer: LocalIssuer) -> SpawnGateways:
    """``gateway_processes`` in front of the ready stand-ins, trusting the session's issuer."""
    return functools.partial(gateway_processes, ready, token_issuer)


ServeStandIn = Callable[..., contextlib.AbstractContextManager[str]]


@pytest.fixture
def serve_stand_in() -> ServeStandIn:
    """Serve a fresh stand-in named ``name`` on ``sock`` (see ``serve``); yields its URL."""

    def opener(
        name: str, sock: socket.socket | None = None
    ) -> contextlib.AbstractContextManager[str]:
        return serve(stand_in_app(StandIn(name)), sock=sock)

    return opener


@pytest.fixture
def serve_asgi() -> Callable[..., contextlib.AbstractContextManager[str]]:
    """``serve``: any ASGI app on a free port, for tests that need their own upstream."""
    return serve
