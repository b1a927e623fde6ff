"""The lean HTTP client against a real socket server written byte by byte, so each test
controls exactly what the service does on the wire (closing an idle connection, chunking,
never answering)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tongban_kit.infra import free_port
from tongban_kit.lean_http import (
    LeanConnectError,
    LeanDisconnected,
    LeanPool,
    LeanTimeout,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@contextlib.asynccontextmanager
async def wire_server(handler: Handler) -> AsyncIterator[tuple[int, list[int]]]:
    """A server calling ``handler(reader, writer, n)`` per connection (n counts from 1);
    yields its port and the list of connection numbers seen."""
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections) + 1)
        try:
            await handler(reader, writer, connections[-1])
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield port, connections


async def read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def pool(port: int, limit: int = 10) -> LeanPool:
    return LeanPool("127.0.0.1", port, connect_timeout_s=1.0, limit=limit)


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok"


async def keep_answering_ok(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int
) -> None:
    """A keep-alive service: every request on the connection gets ``OK``."""
    while True:
        try:
            await read_request(reader)
        except asyncio.IncompleteReadError:
            return
        writer.write(OK)


async def test_keep_alive_connections_are_reused() -> None:
    async with wire_server(keep_answering_ok) as (port, connections):
        lean = pool(port)
        for _ in range(3):
            response = await lean.request("GET", "/x", [], timeout_s=2)
            assert (response.status, await response.read()) == (200, b"ok")
            response.release()
        lean.close()

    assert connections == [1]


async def test_the_request_goes_out_as_sent() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        seen.append(await read_request(reader))
        writer.write(OK)

    async with wire_server(handler) as (port, _):
        lean = pool(port)
        response = await lean.request(
            "DELETE", "/base/items/1?force=yes", [("x-request-id", "r-1")], timeout_s=2
        )
        await response.read()
        response.release()

    assert seen[0].startswith(b"DELETE /base/items/1?force=yes HTTP/1.1\r\n")
    assert f"host: 127.0.0.1:{port}\r\n".encode() in seen[0]
    assert b"x-request-id: r-1\r\n" in seen[0]


async def test_a_body_goes_out_with_its_length_and_the_connection_is_kept() -> None:
    bodies: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            try:
                head = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            bodies.append(await reader.readexactly(length))
            writer.write(OK)

    payload = '{"名称":"深圳"}'.encode()
    async with wire_server(handler) as (port, connections):
        lean = pool(port)
        for _ in range(2):
            response = await lean.request("POST", "/hook", [], timeout_s=2, body=payload)
            assert (response.status, await response.read()) == (200, b"ok")
            response.release()
        lean.close()

    assert bodies == [payload, payload]
    assert connections == [1]


async def test_an_idle_connection_the_service_dropped_is_reported_as_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(OK)
        await writer.drain()
        await read_request(reader)  # the second request on the connection: hang up instead

    async with wire_server(handler) as (port, _):
        lean = pool(port)
        first = await lean.request("GET", "/x", [], timeout_s=2)
        await first.read()
        first.release()
        with pytest.raises(LeanDisconnected) as caught:
            await lean.request("GET", "/x", [], timeout_s=2)

    assert caught.value.reused
    assert not caught.value.started


async def test_a_chunked_body_streams_in_order_and_the_connection_is_kept() -> None:
    chunks = [bytes([i]) * 100_000 for i in range(30)]  # 3 MB, over the pause threshold

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            for chunk in chunks:
                writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")

    async with wire_server(handler) as (port, connections):
        lean = pool(port)
        response = await lean.request("GET", "/stream", [], timeout_s=2)
        assert response.content_length is None
        received = b"".join([chunk async for chunk in response.content.iter_any()])
        response.release()
        again = await lean.request("GET", "/stream", [], timeout_s=2)
        again.close()

    assert received == b"".join(chunks)
    assert connections == [1]


async def test_a_refused_connection_is_a_connect_error() -> None:
    with pytest.raises(LeanConnectError):
        await pool(free_port()).request("GET", "/x", [], timeout_s=1)


async def test_a_service_that_does_not_answer_times_out() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        await asyncio.sleep(2)

    async with wire_server(handler) as (port, _):
        with pytest.raises(LeanTimeout):
            await pool(port).request("GET", "/x", [], timeout_s=0.2)


async def test_requests_over_the_limit_wait_for_a_free_connection() -> None:
    async with wire_server(keep_answering_ok) as (port, connections):
        lean = pool(port, limit=1)
        first = await lean.request("GET", "/x", [], timeout_s=2)
        second = asyncio.create_task(lean.request("GET", "/x", [], timeout_s=2))
        await asyncio.sleep(0.05)
        assert not second.done()  # waiting for the one connection
        await first.read()
        first.release()
        response = await second
        assert await response.read() == b"ok"
        response.release()

    assert connections == [1]


async def test_closing_an_answer_mid_stream_ends_a_waiting_read_at_once() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await asyncio.sleep(5)

    async with wire_server(handler) as (port, _):
        response = await pool(port).request("GET", "/events", [], timeout_s=30)
        chunks = response.content.iter_any()
        assert await anext(chunks) == b"first"
        waiting = asyncio.create_task(anext(chunks))
        await asyncio.sleep(0.05)
        response.close()  # what the relay does when the caller goes
        with pytest.raises(LeanDisconnected):
            await asyncio.wait_for(waiting, 1)


async def test_an_interim_answer_is_skipped() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n" + OK)

    async with wire_server(handler) as (port, _):
        response = await pool(port).request("GET", "/x", [], timeout_s=2)
        body = await response.read()

    assert (response.status, body) == (200, b"ok")
    assert b"link" not in dict(response.raw_headers)
