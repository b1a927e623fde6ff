"""Pure ASGI middleware every service and the gateway share.

``RequestContextMiddleware`` gives each request an id and a W3C trace span, returns both to the
caller, writes one access-log line and records metrics. ``BodyLimitMiddleware`` refuses bodies
over the limit, by ``Content-Length`` up front or by counting a streamed body as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tongban_kit.errors import problem_response
from tongban_kit.observability.context import (
    TraceContext,
    new_request_id,
    parse_traceparent,
    request_id_var,
    trace_var,
)
from tongban_kit.observability.logs import write_access
from tongban_kit.observability.metrics import ServiceMetrics

__all__ = ["BodyLimitMiddleware", "RequestContextMiddleware"]

access_log = logging.getLogger("tongban.access")
_DRAIN_BYTES = 64 * 1024 * 1024
_DRAIN_SECONDS = 10.0


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestContextMiddleware:
    """Request id, trace context, access log and HTTP metrics for every HTTP request."""

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics
        # The labelled metric children by (method, route, status): labels() is a lock and a
        # few lookups per call, on every request.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id(_header(scope, b"x-request-id"))
        incoming = parse_traceparent(_header(scope, b"traceparent"))
        trace = incoming.child() if incoming else TraceContext.start()
        rid_token = request_id_var.set(request_id)
        trace_token = trace_var.set(trace)
        started = time.perf_counter()
        status = 500
        sent = 0

        async def send_with_ids(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k not in (b"x-request-id", b"traceparent", b"server")
                ]
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"traceparent", trace.traceparent.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        started_response = False

        async def send_tracking(message: Message) -> None:
            nonlocal started_response
            started_response = started_response or message["type"] == "http.response.start"
            await send_with_ids(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            # Answered here, not by Starlette's outer handler, so the 500 still carries the
            # request id and is counted; the traceback goes to the log only.
            access_log.exception("unhandled error on %s %s", scope.get("method"), scope["path"])
            if started_response:
                raise
            response = problem_response(
                500,
                "Internal Server Error",
                "The server could not complete the request; quote the request id when "
                "reporting it.",
                type_slug="internal",
            )
            await response(scope, receive, send_with_ids)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            count, latency = self._metric_children(method, template, status)
            count.inc()
            latency.observe(elapsed)
            path = scope.get("path", "")
            write_access(
                f"{method} {path} {status}",
                {
                    "http_method": method,
                    "http_path": path,
                    "http_route": template,
                    "http_status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "response_bytes": sent,
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )
            request_id_var.reset(rid_token)
            trace_var.reset(trace_token)

    def _metric_children(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.metrics.http_requests.labels(method, route, str(status)),
                self.metrics.http_latency.labels(method, route),
            )
            if len(self._children) < 1000:  # any method name may arrive; keep the cache bounded
                self._children[key] = children
        return children


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``max_bytes`` with a 413 problem.

    ``larger`` names paths (regular expressions, matched whole) that take more, such as an
    upload route: ``{r"/v1/applications/[^/]+/documents": 10_485_760}``. The route itself
    must still bound what it keeps.
    """

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, larger: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.default_bytes = max_bytes
        self.larger = [(re.compile(path), limit) for path, limit in (larger or {}).items()]

    def _limit(self, path: str) -> int:
        return next((n for p, n in self.larger if p.fullmatch(path)), self.default_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await _LimitedRequest(self, self._limit(scope.get("path", "")))(scope, receive, send)


class _LimitedRequest:
    """One request under one limit (the path's)."""

    def __init__(self, middleware: BodyLimitMiddleware, max_bytes: int) -> None:
        self.app = middleware.app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await self._refuse(scope, receive, send, 400, "Content-Length is not a number.")
                return
            if int(declared) > self.max_bytes:
                if int(declared) <= _DRAIN_BYTES:
                    await self._drain(receive)
                await self._refuse(scope, receive, send, 413, self._too_large())
                return
        received = 0
        refused = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Answer 413 now and tell the app the client has gone, so it stops reading;
                    # whatever the app then tries to send is dropped.
                    refused = True
                    if not response_started:
                        if message.get("more_body"):
                            await self._drain(receive)
                        await self._refuse(scope, receive, send, 413, self._too_large())
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused:
                return
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counting_receive, guarded_send)

    async def _drain(self, receive: Receive) -> None:
        """Read and drop the rest of a refused upload (bounded in bytes and time) before
        answering: a client still sending would otherwise hit a connection reset before it
        reads the 413 (nginx reads and discards for the same reason)."""
        dropped = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_DRAIN_SECONDS):
                while dropped < _DRAIN_BYTES:
                    message = await receive()
                    if message["type"] != "http.request" or not message.get("more_body"):
                        return
                    dropped += len(message.get("body", b""))

    def _too_large(self) -> str:
        return f"The request body is larger than the {self.max_bytes}-byte limit."

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, status: int, detail: str
    ) -> None:
        extra: dict[str, Any] = {"limit_bytes": self.max_bytes} if status == 413 else {}
        response = problem_response(
            status,
            "Payload Too Large" if status == 413 else "Bad Request",
            detail,
            type_slug="payload-too-large" if status == 413 else "bad-request",
            # The body is not read: tell the client the connection will not be reused for it.
            headers={"connection": "close"},
            **extra,
        )
        await response(scope, receive, send)
