"""The reverse proxy: one shared HTTP client, bodies streamed both ways.

A request under ``/api/<service>/`` is sent to the service with the prefix stripped. Neither
body is held in memory: the caller's body is read as the service reads it, and the service's
response is relayed chunk by chunk, bytes untouched (a compressed body stays compressed).

What the service sees of the caller: its headers minus the hop-by-hop ones, the gateway's request
id and its own span as ``traceparent``, and ``X-Forwarded-For/Proto/Host`` set by the gateway.
What the caller sees of the service: its status, headers (minus hop-by-hop ones, ``Server`` and
``Date``) and body. When the service cannot be reached or answers too slowly, the caller gets a
problem document naming the service: 503 unreachable, 504 too slow, 502 broke off.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import cast

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from tongban_gateway.routes import RouteTable, Upstream
from tongban_gateway.settings import GatewaySettings
from tongban_kit.errors import NotFound, problem_response
from tongban_kit.health import Check
from tongban_kit.observability.context import current_request_id, current_trace

__all__ = ["build_upstream_client", "proxy_router", "readiness_checks"]

logger = logging.getLogger("tongban.gateway.proxy")

_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

# RFC 9110 §7.6.1: meaningful for one connection only, never forwarded.
_HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"te", b"trailers", b"transfer-encoding", b"upgrade"}
)
# Set by the gateway itself; whatever the caller claims for these is not passed on. (A trusted
# load balancer's X-Forwarded-For is already resolved into the client address by uvicorn's
# proxy-headers handling.) Expect is answered by the gateway's server, not relayed.
_SET_BY_GATEWAY = frozenset(
    {
        b"host",
        b"expect",
        b"x-request-id",
        b"traceparent",
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
    }
)
# The gateway's server writes its own Date; no upstream Server banner goes out.
_NOT_RELAYED = frozenset({b"server", b"date"})

# Sized for a 2-core node: enough concurrent upstream requests to keep three services busy.
# Keep-alive expiry stays under uvicorn's 5 s idle timeout so the gateway never reuses a
# connection the service is about to close.
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=40, keepalive_expiry=4.0)


def build_upstream_client(settings: GatewaySettings) -> httpx.AsyncClient:
    """The one client every proxied request and readiness check shares.

    Called once, by the gateway's lifespan, which closes it at shutdown.
    """
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            settings.upstream_timeout_s,
            connect=settings.connect_timeout_s,
            pool=settings.connect_timeout_s,
        ),
        # No retries: a request that reached a service may have changed something. (Retrying
        # idempotent requests comes with circuit breaking.)
        transport=httpx.AsyncHTTPTransport(limits=_LIMITS, retries=0),
        follow_redirects=False,
        # Service URLs are internal: never send them through an HTTP(S)_PROXY from the env.
        trust_env=False,
        # Set-Cookie belongs to the caller; the shared client must not keep it for the next one.
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )


def proxy_router(table: RouteTable) -> APIRouter:
    """One route per service prefix (so metrics name the service), then 404 for the rest of /api.

    Called by ``create_app``; the routes find the client at ``app.state.upstream_client``.
    """
    router = APIRouter()
    for upstream in table.upstreams:
        router.add_api_route(
            f"{upstream.prefix}{{path:path}}",
            _proxy_endpoint(upstream),
            methods=_METHODS,
            name=f"proxy_{upstream.name}",
            include_in_schema=False,  # the services' own operations come with the merged OpenAPI
        )
    router.add_api_route(
        "/api/{path:path}", _unrouted, methods=_METHODS, name="unrouted", include_in_schema=False
    )
    return router


def readiness_checks(client: httpx.AsyncClient, table: RouteTable) -> dict[str, Check]:
    """One check per service: its ``/readyz`` answers 200 (so its own dependencies are up too).

    Called by the lifespan to fill ``app.state.readiness``, which the kit's ``/readyz`` runs.
    """
    return {upstream.name: _ready_check(client, upstream) for upstream in table.upstreams}


class UpstreamNotReady(Exception):
    """A service's ``/readyz`` answered something other than 200."""


def _ready_check(client: httpx.AsyncClient, upstream: Upstream) -> Check:
    url = upstream.url_for("readyz")

    async def check() -> None:
        response = await client.get(url)
        if response.status_code != 200:
            raise UpstreamNotReady(f"{upstream.name} /readyz answered {response.status_code}")

    return check


def _proxy_endpoint(upstream: Upstream) -> Callable[[Request, str], Awaitable[Response]]:
    async def proxy(request: Request, path: str) -> Response:
        """Forward the request to the service named by the prefix, streaming both bodies.

        Access: whatever the upstream route requires; the gateway adds its own token checks in
        the gateway issue.
        """
        return await _forward(request, upstream, path)

    return proxy


async def _unrouted(request: Request) -> Response:
    """Answer 404 for a path under /api that no service is routed at.

    Access: public.
    """
    raise NotFound(f"No service is routed at {request.url.path}.")


async def _forward(request: Request, upstream: Upstream, path: str) -> Response:
    if not upstream.exposes(path):
        raise NotFound(f"No service is routed at {request.url.path}.")
    client = cast(httpx.AsyncClient, request.app.state.upstream_client)
    outgoing = httpx.Request(
        request.method,
        upstream.url_for(path, request.scope.get("query_string", b"")),
        headers=_upstream_headers(request),
        content=request.stream() if _has_body(request) else None,
        # Built without client.build_request, so the client's default headers (Accept,
        # Accept-Encoding, User-Agent) are never added to what the caller sent.
        extensions={"timeout": client.timeout.as_dict()},
    )
    try:
        response = await client.send(outgoing, stream=True)
    except httpx.TransportError as exc:
        return _upstream_failure(request, upstream, exc)
    except ClientDisconnect:
        # Nobody reads this answer; it keeps a traceback out of the log and the 400 in it.
        return problem_response(
            400,
            "Bad Request",
            "The client closed the connection mid-body.",
            type_slug="bad-request",
        )
    public_base = str(request.base_url).rstrip("/") + upstream.prefix.rstrip("/")
    return _RelayedResponse(response, _caller_headers(response, upstream, public_base))


class _RelayedResponse(StreamingResponse):
    """The service's response relayed as it arrives; the upstream stream is closed however the
    relay ends (Starlette skips background tasks when the caller disconnects)."""

    def __init__(self, upstream: httpx.Response, headers: list[tuple[bytes, bytes]]) -> None:
        super().__init__(upstream.aiter_raw(), status_code=upstream.status_code)
        self.raw_headers = headers
        self._upstream = upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._upstream.aclose()


def _has_body(request: Request) -> bool:
    return "content-length" in request.headers or "transfer-encoding" in request.headers


def _connection_scoped(raw: list[tuple[bytes, bytes]]) -> set[bytes]:
    """Hop-by-hop names: the fixed ones, proxy-*, and any the Connection header lists."""
    names = set(_HOP_BY_HOP)
    for name, value in raw:
        if name == b"connection":
            names.update(token.strip().lower() for token in value.split(b","))
    names.update(name for name, _ in raw if name.startswith(b"proxy-"))
    return names


def _upstream_headers(request: Request) -> list[tuple[bytes, bytes]]:
    raw = [(name.lower(), value) for name, value in request.headers.raw]
    dropped = _connection_scoped(raw) | _SET_BY_GATEWAY
    headers = [(name, value) for name, value in raw if name not in dropped]
    request_id = current_request_id()
    trace = current_trace()
    if request_id:
        headers.append((b"x-request-id", request_id.encode()))
    if trace:
        headers.append((b"traceparent", trace.traceparent.encode()))
    if request.client:
        headers.append((b"x-forwarded-for", request.client.host.encode("latin-1")))
    headers.append((b"x-forwarded-proto", request.url.scheme.encode("latin-1")))
    if host := request.headers.get("host"):
        headers.append((b"x-forwarded-host", host.encode("latin-1")))
    return headers


def _caller_headers(
    response: httpx.Response, upstream: Upstream, public_base: str
) -> list[tuple[bytes, bytes]]:
    raw = [(name.lower(), value) for name, value in response.headers.raw]
    dropped = _connection_scoped(raw) | _NOT_RELAYED
    headers = []
    for name, value in raw:
        if name in dropped:
            continue
        if name == b"location":
            # A service's redirect names its own address; point it back through the gateway.
            location = upstream.public_location(value.decode("latin-1"), public_base)
            value = location.encode("latin-1")
        headers.append((name, value))
    return headers


def _upstream_failure(request: Request, upstream: Upstream, exc: httpx.TransportError) -> Response:
    """Map a failed exchange with a service to a problem naming it; never a bare 500."""
    service = upstream.name
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        status, title, slug = 503, "Service Unavailable", "upstream-unavailable"
        detail = f"The {service} service cannot be reached."
    elif isinstance(exc, httpx.PoolTimeout):
        status, title, slug = 503, "Service Unavailable", "upstream-busy"
        detail = f"Too many requests are waiting for the {service} service."
    elif isinstance(exc, httpx.TimeoutException):
        status, title, slug = 504, "Gateway Timeout", "upstream-timeout"
        detail = f"The {service} service did not answer in time."
    else:
        status, title, slug = 502, "Bad Gateway", "upstream-failed"
        detail = f"The {service} service broke off the exchange."
    logger.warning(
        "%s %s: %s (%s)",
        request.method,
        request.url.path,
        detail,
        type(exc).__name__,
        extra={"upstream": service, "http_status": status},
    )
    return problem_response(
        status, title, detail, type_slug=slug, instance=request.url.path, service=service
    )
