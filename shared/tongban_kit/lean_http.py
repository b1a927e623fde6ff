"""A lean HTTP/1.1 client for hot paths: plain-HTTP requests with a small body or none.

aiohttp's request machinery was the largest part of a proxied GET's CPU (bench/gateway), and
httpx's the largest part of a webhook delivery's (bench/exchange_routing.py); this client does
only what those need: keep-alive connections per ``host:port`` (``LeanPool``), the request
written in one piece (a body given as bytes, sent with its ``content-length``), the answer
parsed by ``httptools`` (llhttp, as uvicorn's server uses) and its body streamed with flow
control (reading pauses while 256 KiB are waiting), so a long stream costs no memory. Streamed
request bodies, ``HEAD`` and HTTPS go through a full client (the gateway's
``tongban_gateway.relay`` uses aiohttp; data-exchange's webhooks use httpx).

Failures are ``LeanError``s: ``LeanConnectError`` (the service cannot be reached or no
connection was free in time), ``LeanTimeout`` (no answer or next chunk in time) and
``LeanDisconnected`` (the connection broke off; ``reused`` when it was an idle pooled one that
the service had closed, safe to retry for an idempotent request).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator
from typing import cast

import httptools

__all__ = [
    "LeanConnectError",
    "LeanDisconnected",
    "LeanError",
    "LeanPool",
    "LeanResponse",
    "LeanTimeout",
]

_HIGH_WATER = 256 * 1024
# Under uvicorn's 5 s idle timeout, so a connection the service is closing is not reused.
_IDLE_S = 4.0


class LeanError(Exception):
    """The exchange with the service failed."""


class LeanConnectError(LeanError):
    """No connection to the service (refused, unreachable, or none free in time)."""


class LeanTimeout(LeanError, TimeoutError):
    """The service did not answer, or send its next chunk, in time."""


class LeanDisconnected(LeanError):
    """The connection ended before the answer did."""

    def __init__(self, message: str, *, reused: bool = False, started: bool = False) -> None:
        super().__init__(message)
        self.reused = reused
        self.started = started  # some of the answer had arrived


class _Connection(asyncio.Protocol):
    def __init__(self, pool: LeanPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.used = False
        self.counted = True  # in the pool's count of open connections
        self.interim = False  # parsing a 1xx answer
        self.response: LeanResponse | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance check here.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.response is None:
            self.close()  # bytes nobody asked for: the connection is not usable
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.response._fail(LeanDisconnected(f"unparsable answer: {exc}", started=True))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self.response
        if response is not None and not response.complete:
            if response.headers_done and response._until_close:
                response._finish()  # a body delimited by the connection's end
            else:
                response._fail(
                    LeanDisconnected(
                        "the service closed the connection",
                        reused=self.used and not response.headers_done and not response._bytes,
                        started=response.headers_done,
                    )
                )
        self.pool._forget(self)

    def pause_writing(self) -> None:  # requests are small; nothing to hold back
        pass

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.response is not None
        self.response._bytes = True
        self.response.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        response = self.response
        assert response is not None
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            # An interim answer (103 Early Hints): not relayed; the real one follows.
            self.interim = True
            response.raw_headers.clear()
            return
        response.status = status
        response._keep_alive = self.parser.should_keep_alive()
        response._headers_complete()

    def on_body(self, body: bytes) -> None:
        assert self.response is not None
        self.response._feed(body)

    def on_message_complete(self) -> None:
        assert self.response is not None
        if self.interim:
            self.interim = False
            return
        self.response._finish()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(LeanTimeout("the service did not answer in time"))


class LeanResponse:
    """The service's answer, read like aiohttp's: ``status``, ``raw_headers``,
    ``content_length``, ``read()``, ``content.iter_any()``, then ``release()`` or ``close()``."""

    def __init__(self, connection: _Connection, timeout_s: float) -> None:
        self._connection = connection
        self._timeout_s = timeout_s
        self._loop = asyncio.get_running_loop()
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self._bytes = False
        self._keep_alive = False
        self._until_close = False
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._paused = False
        self._error: LeanError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._released = False

    @property
    def content(self) -> LeanResponse:
        return self

    @property
    def content_length(self) -> int | None:
        for name, value in self.raw_headers:
            if name.lower() == b"content-length":
                return int(value) if value.isdigit() else None
        return None

    async def _wait(self) -> None:
        """Until the connection has news, or ``timeout_s`` without any. A timer handle rather
        than ``asyncio.timeout``, which cost a tenth of a webhook's CPU (two waits a request)."""
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_later(self._timeout_s, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    async def _start(self) -> None:
        while not self.headers_done and self._error is None:
            await self._wait()
        if self._error is not None:
            raise self._error

    async def read(self) -> bytes:
        """The whole body (for answers of known, small length)."""
        while not self.complete and self._error is None:
            await self._wait()
        if self._error is not None and not self.complete:
            raise self._error
        body = b"".join(self._chunks)
        self._chunks.clear()
        return body

    async def iter_any(self) -> AsyncIterator[bytes]:
        """The body as it arrives."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered < _HIGH_WATER // 2:
                    self._paused = False
                    transport = self._connection.transport
                    if transport is not None and not self._connection.closed:
                        transport.resume_reading()
                yield chunk
            elif self.complete:
                return
            elif self._error is not None:
                raise self._error
            else:
                await self._wait()

    def release(self) -> None:
        """Done with a fully read answer: the connection goes back to the pool."""
        if self._released:
            return
        self._released = True
        connection = self._connection
        connection.response = None
        if self.complete and self._keep_alive and not connection.closed:
            connection.pool._give_back(connection)
        else:
            connection.close()
            connection.pool._forget(connection)

    def close(self) -> None:
        """Done before the end: the connection is dropped (a read waiting on it ends)."""
        if self._released:
            return
        self._released = True
        if not self.complete:
            self._fail(LeanDisconnected("the answer was abandoned", started=self.headers_done))
        self._connection.response = None
        self._connection.close()
        self._connection.pool._forget(self._connection)

    # from the connection
    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _headers_complete(self) -> None:
        self.headers_done = True
        lowered = {name.lower() for name, _ in self.raw_headers}
        self._until_close = b"content-length" not in lowered and b"transfer-encoding" not in lowered
        self._wake()

    def _feed(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered >= _HIGH_WATER and not self._paused:
            self._paused = True
            transport = self._connection.transport
            if transport is not None:
                transport.pause_reading()
        self._wake()

    def _finish(self) -> None:
        self.complete = True
        self._wake()

    def _fail(self, error: LeanError) -> None:
        if self._error is None:
            self._error = error
        self._wake()


class LeanPool:
    """Keep-alive connections to one ``host:port``, at most ``limit`` at once."""

    def __init__(self, host: str, port: int, *, connect_timeout_s: float, limit: int) -> None:
        self.host = host
        self.port = port
        self.connect_timeout_s = connect_timeout_s
        self.limit = limit
        self._idle: list[_Connection] = []
        self._open = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._host_header = f"{host}:{port}".encode("latin-1")

    async def request(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        *,
        timeout_s: float,
        body: bytes | None = None,
    ) -> LeanResponse:
        """Send a request (``body``: the whole of it, or None for none) and return once the
        answer's headers have arrived."""
        connection = await self._acquire()
        response = LeanResponse(connection, timeout_s)
        connection.response = response
        lines = [f"{method} {target} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in headers]
        if body is not None:
            lines.append(f"content-length: {len(body)}\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        assert connection.transport is not None
        try:
            connection.transport.write(head + body if body else head)
            await response._start()
        except BaseException:
            response.close()
            raise
        return response

    async def _acquire(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < _IDLE_S:
                connection.used = True
                return connection
            connection.close()
            self._forget(connection)
        while self._open >= self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout(self.connect_timeout_s):
                    await waiter
            except TimeoutError:
                raise LeanConnectError("no free connection to the service in time") from None
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if self._idle:
                return await self._acquire()
        self._open += 1
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, connection = await asyncio.get_running_loop().create_connection(
                    lambda: _Connection(self), self.host, self.port
                )
        except TimeoutError:
            self._open -= 1
            self._wake_one()
            raise LeanConnectError("connecting to the service timed out") from None
        except OSError as exc:
            self._open -= 1
            self._wake_one()
            raise LeanConnectError(f"cannot connect to the service: {exc}") from None
        return connection

    def _give_back(self, connection: _Connection) -> None:
        connection.idle_since = time.monotonic()
        connection.parser = httptools.HttpResponseParser(connection)
        self._idle.append(connection)
        self._wake_one()

    def _forget(self, connection: _Connection) -> None:
        if connection in self._idle:
            self._idle.remove(connection)
        if connection.counted:
            connection.counted = False
            self._open -= 1
            self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()
