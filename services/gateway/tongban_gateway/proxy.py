"""The reverse proxy: route, check, limit, forward.

``EdgeProxy`` is a plain ASGI app that ``GatewayApp`` sends ``/api/…`` and ``/nodes/…`` to
(no FastAPI router, request or dependency machinery on the hot path). For each request it

1. matches the route (``RouteTable``): 404 unrouted, 405 a method the service does not take;
2. on a protected route, verifies the bearer token (``EdgeAuth``): 401, or 503 if identity's
   keys cannot be had;
3. draws on the caller's rate-limit bucket: 429 with ``Retry-After`` when empty;
4. refuses a body over the route's limit (413), and a service whose breaker is open (503, at
   once);
5. forwards with the prefix stripped, retrying an idempotent request without a body once if
   the connection fails, and relays the answer chunk by chunk as it arrives. Bodiless
   GET/OPTIONS/DELETE to plain-HTTP services go through the lean client
   (``tongban_kit.lean_http``), the rest through aiohttp.

Both bodies are streamed (``tongban_gateway.relay``).
"""

from __future__ import annotations

import logging

import aiohttp
from fastapi import FastAPI
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from tongban_gateway.auth import EdgeAuth, client_key
from tongban_gateway.breaker import CircuitBreaker
from tongban_gateway.crossnode import business_division
from tongban_gateway.directory import Directory, NodeEntry
from tongban_gateway.federation import ASSERTION_HEADER, AssertionVerifier, NodeSigner
from tongban_gateway.headers import upstream_headers
from tongban_gateway.ratelimit import Buckets, Decision
from tongban_gateway.relay import BodyTooLarge, UpstreamResponse, relay, request_body
from tongban_gateway.routes import (
    MethodNotAllowed,
    Route,
    RouteConfigError,
    RouteTable,
    Upstream,
    directory_url,
    node_route,
)
from tongban_gateway.settings import GatewaySettings
from tongban_kit.auth.replay import ReplayGuard
from tongban_kit.errors import (
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TongbanError,
    problem_response,
)
from tongban_kit.health import Check
from tongban_kit.lean_http import LeanConnectError, LeanDisconnected, LeanError, LeanPool

__all__ = ["EdgeProxy", "GatewayApp", "MethodNotRouted", "TooManyRequests"]

logger = logging.getLogger("tongban.gateway.proxy")

# Safe to send twice when the first attempt never reached the service (RFC 9110 §9.2.2).
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Bodiless requests in these methods go through the lean client (HEAD's answer has no body
# whatever its headers say, which the lean parser is not told).
_LEAN_METHODS = frozenset({"GET", "OPTIONS", "DELETE"})
# Connections to one service at once, as the aiohttp client's limit.
_POOL_LIMIT = 200


def _retryable(exc: BaseException) -> bool:
    """A connection that failed before the service could have acted on the request."""
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ServerDisconnectedError):
        return True
    if isinstance(exc, LeanConnectError):
        return True
    return isinstance(exc, LeanDisconnected) and not exc.started


class TooManyRequests(TongbanError):
    status, title, type_slug = 429, "Too Many Requests", "rate-limited"


class MethodNotRouted(TongbanError):
    status, title, type_slug = 405, "Method Not Allowed", "method-not-allowed"


class EdgeProxy:
    """The ASGI app for ``/api/...`` and ``/nodes/...``; ``start`` gives it its clients in
    the lifespan.

    Refusals (``TongbanError``) are answered here as problem documents, so the app needs none
    of the framework's routing or exception layers around it (see ``GatewayApp``).
    """

    def __init__(
        self,
        table: RouteTable,
        settings: GatewaySettings,
        *,
        signer: NodeSigner | None,
        directory: Directory | None = None,
    ) -> None:
        self.table = table
        self.settings = settings
        self.signer = signer  # set when other nodes are configured
        self.directory = directory  # set when the node follows the central directory
        self.verifier: AssertionVerifier | None = None  # with the directory, from ``start``
        self._remote_routes: dict[tuple[str, str, bool], Route] = {}
        self.breakers = {
            upstream.name: CircuitBreaker(
                threshold=settings.breaker_failures, open_s=settings.breaker_open_s
            )
            for upstream in (*table.upstreams, *table.node_upstreams)
        }
        self._session: aiohttp.ClientSession | None = None
        self._auth: EdgeAuth | None = None
        self._buckets: Buckets | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._lean_pools: dict[str, tuple[LeanPool, int] | None] = {}

    def start(
        self,
        session: aiohttp.ClientSession,
        auth: EdgeAuth,
        buckets: Buckets,
        replays: ReplayGuard | None = None,
    ) -> None:
        """Hand over the lifespan's clients; ``replays`` is required with a directory (it
        remembers the ``jti`` of the node assertions checked here)."""
        self._session, self._auth, self._buckets = session, auth, buckets
        if self.directory is not None:
            assert replays is not None
            node_code = self.settings.node.node_code
            self.verifier = AssertionVerifier(self.directory, node_code=node_code, replays=replays)

    def readiness_checks(self) -> dict[str, Check]:
        """One check per service: its ``/readyz`` answers 200 (its own dependencies are up)."""
        return {upstream.name: self._ready_check(upstream) for upstream in self.table.upstreams}

    def _ready_check(self, upstream: Upstream) -> Check:
        url = str(upstream.url_for("readyz"))

        async def check() -> None:
            assert self._session is not None
            async with self._session.get(url) as response:
                if response.status != 200:
                    raise UpstreamNotReady(f"{upstream.name} /readyz answered {response.status}")

        return check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._handle(scope, receive, send)
        except TongbanError as exc:
            # Raised before anything was sent: the refusal is the whole answer.
            response = problem_response(
                exc.status,
                exc.title,
                exc.detail,
                type_slug=exc.type_slug,
                instance=scope["path"],
                headers=exc.headers,
                **exc.extensions,
            )
            await response(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        request_headers: dict[bytes, bytes] = dict(scope["headers"])
        from_node = None
        assertion = request_headers.get(ASSERTION_HEADER.encode())
        if assertion is not None and self.verifier is not None:
            from_node = await self.verifier.verify(assertion.decode("latin-1"))
            # The sending gateway limited its callers; here they would share one bucket.
            scope["tongban.from_node"] = from_node
        try:
            matched = None
            if self.directory is not None and from_node is None:
                matched = self._directory_match(method, path, scope.get("query_string", b""))
            if matched is None:
                matched = self.table.match(method, path)
        except MethodNotAllowed as exc:
            raise MethodNotRouted(
                f"{method} is not routed to this service.",
                headers={"Allow": ", ".join(exc.allowed)},
            ) from None
        if matched is None:
            raise NotFound(f"No service is routed at {path}.")
        route, rest = matched
        scope["route"] = route  # the kit's metrics and access log name the declared route
        if not route.upstream.exposes(rest):
            raise NotFound(f"No service is routed at {path}.")
        decision = await self._admit(scope, route, request_headers)
        declared = request_headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > route.max_body_bytes:
            raise PayloadTooLarge(
                f"The request body is larger than this route's {route.max_body_bytes}-byte limit.",
                headers={"connection": "close"},
                limit_bytes=route.max_body_bytes,
            )
        extra = decision.headers() if decision is not None else []
        await self._forward(scope, receive, send, route, rest, request_headers, extra)

    async def _admit(
        self, scope: Scope, route: Route, headers: dict[bytes, bytes]
    ) -> Decision | None:
        """Check the token (protected routes) and take from the caller's bucket."""
        assert self._auth is not None
        assert self._buckets is not None
        caller = None
        if not route.public:
            authorization = headers.get(b"authorization")
            claims = await self._auth.claims(
                authorization.decode("latin-1") if authorization else None
            )
            caller = client_key(claims)
        if route.rate_limit is None or "tongban.from_node" in scope:
            return None
        if caller is None:
            caller = f"ip:{(scope.get('client') or ('unknown', 0))[0]}"
        limit = self.table.rate_limits[route.rate_limit]
        decision = await self._buckets.take(route.rate_limit, limit, caller)
        if not decision.allowed:
            raise TooManyRequests(
                f"Too many requests; try again in {decision.retry_after_s} s.",
                headers={name.decode(): value.decode() for name, value in decision.headers()},
                retry_after_s=decision.retry_after_s,
            )
        return decision

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: Route,
        rest: str,
        request_headers: dict[bytes, bytes],
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        assert self._session is not None
        upstream = route.upstream
        breaker = self.breakers.get(upstream.name)
        if breaker is None:  # another node found in the directory
            breaker = self.breakers.setdefault(
                upstream.name,
                CircuitBreaker(
                    threshold=self.settings.breaker_failures, open_s=self.settings.breaker_open_s
                ),
            )
        if not breaker.allow():
            retry = breaker.retry_after_s()
            response = problem_response(
                503,
                "Service Unavailable",
                f"The {upstream.name} service is failing; calls are paused for up to {retry} s.",
                type_slug="upstream-unavailable",
                instance=scope["path"],
                headers={"retry-after": str(retry)},
                service=upstream.name,
            )
            await response(scope, receive, send)
            return
        has_body = b"content-length" in request_headers or b"transfer-encoding" in request_headers
        method: str = scope["method"]
        url = upstream.forward_url(rest, scope.get("query_string", b""))
        headers = upstream_headers(scope)
        if route.node is not None:
            headers = self._for_node(headers, route.node)
        retries = 1 if method in _IDEMPOTENT and not has_body else 0
        timeout = self._timeout(route.timeout_s)
        lean = self._lean(upstream) if not has_body and method in _LEAN_METHODS else None
        upstream_response: UpstreamResponse
        while True:
            body = request_body(receive, route.max_body_bytes) if has_body else None
            try:
                if lean is not None:
                    pool, origin = lean
                    upstream_response = await pool.request(
                        method, url[origin:], headers, timeout_s=route.timeout_s
                    )
                else:
                    upstream_response = await self._session.request(
                        method,
                        aiohttp.client.URL(url, encoded=True),
                        headers=headers,
                        data=body,
                        allow_redirects=False,
                        timeout=timeout,
                    )
            except (
                aiohttp.ClientError,
                TimeoutError,
                BodyTooLarge,
                ClientDisconnect,
                LeanError,
            ) as exc:
                # A failing caller body surfaces as the client's error, caused by ours.
                cause = exc if not isinstance(exc, aiohttp.ClientError) else exc.__cause__
                if isinstance(cause, BodyTooLarge):
                    breaker.released()
                    raise PayloadTooLarge(
                        f"The request body is larger than this route's "
                        f"{route.max_body_bytes}-byte limit.",
                        headers={"connection": "close"},
                        limit_bytes=route.max_body_bytes,
                    ) from None
                if isinstance(cause, ClientDisconnect):
                    breaker.released()  # nobody is there to answer
                    return
                if retries and _retryable(exc):
                    retries -= 1
                    continue
                await self._failed(scope, receive, send, upstream, breaker, exc)
                return
            break
        breaker.succeeded()
        await relay(scope, receive, send, upstream, upstream_response, extra)

    def _directory_match(self, method: str, path: str, query: bytes) -> tuple[Route, str] | None:
        """A route to another node found in the directory: ``/nodes/<code>/…`` for a node the
        route configuration does not name, or a public request about a business registered
        there (``tongban_gateway.crossnode``); None otherwise."""
        assert self.directory is not None
        if path.startswith("/nodes/"):
            code, _, rest = path[len("/nodes/") :].partition("/")
            if code in self.table.nodes:
                return None
            entry = self.directory.node(code)
            return (self._remote(entry, public=False), rest) if entry is not None else None
        division = business_division(method, path, query)
        if division is None:
            return None
        entry = self.directory.holder(division)
        if entry is None:
            return None
        return self._remote(entry, public=True), path[1:]

    def _remote(self, entry: NodeEntry, *, public: bool) -> Route:
        key = (entry.code, entry.gateway_url, public)
        route = self._remote_routes.get(key)
        if route is None:
            limits = self.table.rate_limits
            try:
                url = directory_url(entry.gateway_url, entry.code)
            except RouteConfigError:
                raise ServiceUnavailable(
                    f"The directory lists no usable gateway URL for node {entry.code}."
                ) from None
            route = node_route(
                entry.code,
                url,
                self.settings,
                rate_limit="lookups" if public and "lookups" in limits else "default",
                public=public,
            )
            self._remote_routes[key] = route
        return route

    def _lean(self, upstream: Upstream) -> tuple[LeanPool, int] | None:
        """The lean client's pool for a plain-HTTP service, and the length of the origin
        (``http://host:port``) to strip from its URLs; None for HTTPS."""
        if upstream.name in self._lean_pools:
            return self._lean_pools[upstream.name]
        url = upstream.base_url
        lean = None
        if url.scheme == "http":
            pool = LeanPool(
                url.host,
                url.port or 80,
                connect_timeout_s=self.settings.connect_timeout_s,
                limit=_POOL_LIMIT,
            )
            origin = len(str(url.copy_with(path="/", query=None)).rstrip("/"))
            lean = (pool, origin)
        self._lean_pools[upstream.name] = lean
        return lean

    def close(self) -> None:
        """Close the lean client's idle connections (at shutdown)."""
        for lean in self._lean_pools.values():
            if lean:
                lean[0].close()

    def _for_node(self, headers: list[tuple[str, str]], code: str) -> list[tuple[str, str]]:
        """The caller's token stays here; this node's signed assertion goes instead."""
        assert self.signer is not None
        kept = [(name, value) for name, value in headers if name != "authorization"]
        kept.append((ASSERTION_HEADER, self.signer.assertion(code)))
        return kept

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            # connect also bounds the wait for a pooled connection; sock_read bounds the wait
            # for the response headers and for each chunk after them.
            timeout = aiohttp.ClientTimeout(
                total=None, connect=self.settings.connect_timeout_s, sock_read=seconds
            )
            self._timeouts[seconds] = timeout
        return timeout

    async def _failed(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        upstream: Upstream,
        breaker: CircuitBreaker,
        exc: BaseException,
    ) -> None:
        """Answer a failed exchange with a problem naming the service; never a bare 500."""
        service = upstream.name
        if isinstance(
            exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError | LeanConnectError
        ):
            breaker.failed()
            status, title, slug = 503, "Service Unavailable", "upstream-unavailable"
            detail = f"The {service} service cannot be reached."
        elif isinstance(exc, TimeoutError):
            breaker.failed()
            status, title, slug = 504, "Gateway Timeout", "upstream-timeout"
            detail = f"The {service} service did not answer in time."
        else:
            breaker.released()
            status, title, slug = 502, "Bad Gateway", "upstream-failed"
            detail = f"The {service} service broke off the exchange."
        logger.warning(
            "%s %s: %s (%s)",
            scope["method"],
            scope["path"],
            detail,
            type(exc).__name__,
            extra={"upstream": service, "http_status": status},
        )
        response = problem_response(
            status, title, detail, type_slug=slug, instance=scope["path"], service=service
        )
        await response(scope, receive, send)


class GatewayApp(FastAPI):
    """The gateway's app: ``/api/...`` and ``/nodes/...`` go straight to ``api`` (the proxy in
    the kit's request context and body limit and the browser policy), the rest (the gateway's
    own endpoints: OpenAPI, docs, health, metrics) through FastAPI as usual.

    The proxy is the hot path: it skips the framework's whole stack (router, exception,
    telemetry and error middleware), which answers nothing there; ``api`` handles its own
    failures (the kit's request context turns an unexpected error into a 500 problem).
    """

    api: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        api = self.api
        if (
            api is not None
            and scope["type"] == "http"
            and scope["path"].startswith(("/api/", "/nodes/"))
        ):
            scope["app"] = self
            await api(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


class UpstreamNotReady(Exception):
    """A service's ``/readyz`` answered something other than 200."""
