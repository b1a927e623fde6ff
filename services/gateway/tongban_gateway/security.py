"""What browsers are told: security headers on every response the gateway sends, its own and
the services' alike, and which portal origins may call the API cross-origin."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeadersMiddleware", "browser_policy", "install_browser_policy"]

_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
# Two years, the preload list's floor; sent only where the node is served over HTTPS.
_HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")


# Headers a portal's script may send, and may read from an answer, cross-origin.
_ALLOWED_HEADERS = [
    "authorization",
    "content-type",
    "x-request-id",
    "traceparent",
    "idempotency-key",
]
_EXPOSED_HEADERS = [
    "x-request-id",
    "traceparent",
    "location",
    "retry-after",
    "ratelimit",
    "ratelimit-policy",
    "www-authenticate",
]


_CORS = {
    "allow_methods": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
    "allow_headers": _ALLOWED_HEADERS,
    "expose_headers": _EXPOSED_HEADERS,
    "allow_credentials": False,  # bearer tokens, never cookies, cross-origin
    "max_age": 600,
}


def install_browser_policy(app: FastAPI, *, cors_origins: list[str], production: bool) -> None:
    """Add CORS for ``cors_origins`` (none: no cross-origin access) and, outermost, the
    security headers. Call once the app's other middleware is in place."""
    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=cors_origins, **_CORS)
    # Outermost: every response, a 413, a CORS preflight or a last-resort 500 included.
    app.add_middleware(SecurityHeadersMiddleware, hsts=production)


def browser_policy(app: ASGIApp, *, cors_origins: list[str], production: bool) -> ASGIApp:
    """``app`` wrapped in the same policy as ``install_browser_policy`` gives a FastAPI app
    (for the proxied paths, which do not pass through the framework)."""
    if cors_origins:
        app = CORSMiddleware(app, allow_origins=cors_origins, **_CORS)  # type: ignore[arg-type]
    return SecurityHeadersMiddleware(app, hsts=production)


class SecurityHeadersMiddleware:
    """Set the edge's security headers, replacing any a service sent: the edge owns them.

    HSTS goes out in production, and on any request that arrived over HTTPS (directly, or from
    a trusted TLS-terminating proxy that uvicorn's proxy-headers handling believes).
    """

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.plain = _ALWAYS
        self.secure = (*_ALWAYS, _HSTS)
        self.always_hsts = hsts
        self.names = {name for name, _ in self.secure}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = self.always_hsts or scope.get("scheme") == "https"
        ours = self.secure if tls else self.plain

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in self.names
                ]
                headers.extend(ours)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
