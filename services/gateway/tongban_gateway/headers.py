"""Which headers cross the gateway, each way.

What the service sees of the caller: its headers minus the hop-by-hop ones, the gateway's
request id and its own span as ``traceparent``, and ``X-Forwarded-For/Proto/Host`` set by the
gateway. What the caller sees of the service: its status, headers (minus hop-by-hop ones,
``Server`` and ``Date``) and body, a redirect into the service pointed back through the gateway.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Scope

from tongban_gateway.routes import Upstream
from tongban_kit.observability.context import current_request_id, current_trace

__all__ = ["caller_headers", "upstream_headers"]

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


def _connection_scoped(raw: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    """Hop-by-hop names: the fixed ones, proxy-*, and any the Connection header lists."""
    names = set(_HOP_BY_HOP)
    for name, value in raw:
        if name == b"connection":
            names.update(token.strip().lower() for token in value.split(b","))
        elif name.startswith(b"proxy-"):
            names.add(name)
    return names


def upstream_headers(scope: Scope) -> list[tuple[str, str]]:
    """The headers to send the service for the caller's request in ``scope``."""
    raw: list[tuple[bytes, bytes]] = scope["headers"]  # ASGI: names already lower-case
    dropped = _connection_scoped(raw) | _SET_BY_GATEWAY
    headers = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in raw
        if name not in dropped
    ]
    request_id = current_request_id()
    trace = current_trace()
    if request_id:
        headers.append(("x-request-id", request_id))
    if trace:
        headers.append(("traceparent", trace.traceparent))
    client = scope.get("client")
    if client:
        headers.append(("x-forwarded-for", client[0]))
    headers.append(("x-forwarded-proto", scope.get("scheme", "http")))
    for name, value in raw:
        if name == b"host":
            headers.append(("x-forwarded-host", value.decode("latin-1")))
            break
    return headers


def caller_headers(
    raw: Iterable[tuple[bytes, bytes]], upstream: Upstream, scope: Scope
) -> list[tuple[bytes, bytes]]:
    """The service's response headers as the caller gets them (``scope``: the caller's
    request, for redirects)."""
    lowered = [(name.lower(), value) for name, value in raw]
    dropped = _connection_scoped(lowered) | _NOT_RELAYED
    headers = []
    for name, value in lowered:
        if name in dropped:
            continue
        if name == b"location":
            # A service's redirect names its own address; point it back through the gateway.
            location = upstream.public_location(
                value.decode("latin-1"), _public_base(scope, upstream)
            )
            value = location.encode("latin-1")
        headers.append((name, value))
    return headers


def _public_base(scope: Scope, upstream: Upstream) -> str:
    """The gateway's own URL for the upstream's prefix, as the caller addressed it."""
    host = "localhost"
    for name, value in scope["headers"]:
        if name == b"host":
            host = value.decode("latin-1")
            break
    root = scope.get("root_path", "")
    return f"{scope.get('scheme', 'http')}://{host}{root}{upstream.prefix.rstrip('/')}"
