"""How bodies cross the gateway: the one upstream client, and both bodies streamed.

Neither body is held in memory: the caller's body is read as the service reads it
(``request_body``), and the service's response is relayed as it arrives (``relay``), bytes
untouched (a compressed body stays compressed). The clients were chosen by measurement
(bench/gateway): httpx's default transport proxied an order of magnitude fewer requests a
second than aiohttp on this kind of machine, and the lean client (``tongban_kit.lean_http``),
which takes the bodiless requests, halves aiohttp's CPU per request again; aiohttp takes the
rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send

from tongban_gateway.headers import caller_headers
from tongban_gateway.routes import Upstream
from tongban_gateway.settings import GatewaySettings
from tongban_kit.lean_http import LeanError, LeanResponse

__all__ = [
    "BodyTooLarge",
    "UpstreamResponse",
    "build_upstream_session",
    "relay",
    "request_body",
    "upstream_session",
]

logger = logging.getLogger("tongban.gateway.proxy")

_END = {"type": "http.response.body", "body": b"", "more_body": False}

#: What ``relay`` reads: aiohttp's answer, or the lean client's (same attributes).
UpstreamResponse = aiohttp.ClientResponse | LeanResponse


class BodyTooLarge(Exception):
    """The caller's body went over the route's limit while it was being forwarded."""


def build_upstream_session(settings: GatewaySettings) -> aiohttp.ClientSession:
    """The one client every proxied request and readiness check shares (built in the lifespan,
    closed at shutdown)."""
    connector = aiohttp.TCPConnector(
        # Sized for a 2-core node: enough concurrent requests to keep three services busy.
        limit=200,
        # Under uvicorn's 5 s idle timeout, so a connection the service is closing is not reused.
        keepalive_timeout=4.0,
    )
    return aiohttp.ClientSession(
        connector=connector,
        # The caller's headers go as they came: no Accept, User-Agent or Content-Type added.
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        auto_decompress=False,
        # Set-Cookie belongs to the caller; the shared client must not keep it for the next one.
        cookie_jar=aiohttp.DummyCookieJar(),
        # Service URLs are internal: never through an HTTP(S)_PROXY from the environment.
        trust_env=False,
    )


async def request_body(receive: Receive, limit: int) -> AsyncIterator[bytes]:
    """The caller's body as it arrives; raises if the caller leaves or sends too much, which
    makes the client break the connection to the service so it never sees a complete body."""
    received = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise BodyTooLarge()
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def relay(
    scope: Scope,
    receive: Receive,
    send: Send,
    upstream: Upstream,
    response: UpstreamResponse,
    extra: list[tuple[bytes, bytes]],
) -> None:
    """Send the service's answer on as it arrives; the upstream connection is released however
    the relay ends (dropped, not reused, unless the body was read to its end).

    The server drops what is sent to a caller who has gone without saying so, so a long
    answer is watched: the caller leaving closes the service's response at once (an endless
    event stream included).
    """
    complete = False
    short = _short(response)
    watcher = None if short else asyncio.ensure_future(_disconnected(receive))
    if watcher is not None:
        watcher.add_done_callback(lambda _: response.close())
    try:
        headers = caller_headers(response.raw_headers, upstream, scope)
        start = {"type": "http.response.start", "status": response.status, "headers": headers}
        if extra:
            headers.extend(extra)
        if short:
            # A small body of known length: read whole, sent in one message (the hot path).
            body = await response.read()
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": False})
        else:
            await send(start)
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send(_END)
        complete = True
    except (aiohttp.ClientError, TimeoutError, LeanError) as exc:
        if watcher is None or not watcher.done():
            # Too late for a problem document: the caller sees the connection end short.
            logger.warning(
                "%s %s: the %s service broke off its response (%s)",
                scope["method"],
                scope["path"],
                upstream.name,
                type(exc).__name__,
                extra={"upstream": upstream.name},
            )
    except OSError:
        pass  # the caller hung up; the service's connection is dropped below
    finally:
        if watcher is not None:
            watcher.cancel()
        if complete:
            response.release()
        else:
            response.close()


_SHORT_BYTES = 256 * 1024


def _short(response: UpstreamResponse) -> bool:
    """A body of known, small size: relayed in a moment, not worth watching the caller for."""
    length = response.content_length
    return length is not None and length <= _SHORT_BYTES


async def _disconnected(receive: Receive) -> None:
    """Return when the caller has gone (whatever body is left unread is skipped)."""
    while (await receive())["type"] != "http.disconnect":
        pass


@contextlib.asynccontextmanager
async def upstream_session(settings: GatewaySettings) -> AsyncIterator[aiohttp.ClientSession]:
    session = build_upstream_session(settings)
    try:
        yield session
    finally:
        await session.close()
        await asyncio.sleep(0)  # lets aiohttp finish closing its transports
