"""Resilience: retries of idempotent requests, the circuit breaker, and streaming that never
holds a body (a 100 MB response, server-sent events)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import httpx
import psutil
import pytest

if TYPE_CHECKING:
    from conftest import OpenGateway, ServeStandIn, SpawnGateways, StandIn


@contextlib.asynccontextmanager
async def drops_first_connection(real: str, marker: bytes) -> AsyncIterator[str]:
    """A TCP front that closes unanswered the first request naming ``marker`` (as a stale
    keep-alive or a restarting service would) and relays everything else to ``real``. Every
    chunk the gateway sends is looked at, not only a connection's first request: the gateway
    may reuse a pooled connection (its readiness check opened it) for the request under test."""
    host, port = httpx.URL(real).host, httpx.URL(real).port
    dropped = False

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def inspect(
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: asyncio.StreamWriter,
    ) -> None:
        nonlocal dropped
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if marker in data and not dropped:
                    dropped = True
                    break  # the request never reaches the service; the caller sees a close
                upstream.write(data)
                await upstream.drain()
        writer.close()
        upstream.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        await asyncio.gather(
            inspect(reader, writer, upstream_writer), relay(upstream_reader, writer)
        )

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_an_idempotent_request_is_retried_when_the_connection_fails(
    open_gateway: OpenGateway, ready: dict[str, StandIn]
) -> None:
    async with (
        drops_first_connection(ready["exchange"].url, b"/v1/retried") as flaky,
        open_gateway(exchange_url=flaky) as gateway,
    ):
        response = await gateway.get("/api/exchange/v1/retried")

    assert response.status_code == 200
    assert response.json()["path"] == "/v1/retried"


async def test_a_post_is_not_retried(open_gateway: OpenGateway, ready: dict[str, StandIn]) -> None:
    async with (
        drops_first_connection(ready["exchange"].url, b"/v1/not-retried") as flaky,
        open_gateway(exchange_url=flaky) as gateway,
    ):
        response = await gateway.post("/api/exchange/v1/not-retried", json={"a": 1})

    assert response.status_code == 502
    assert response.json()["service"] == "exchange"
    assert ready["exchange"].saw("/v1/not-retried") == []


@pytest.fixture
def closed_port() -> Iterator[socket.socket]:
    """A port bound but not listening yet (refusing connections) that a test can serve on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


async def test_the_breaker_opens_answers_fast_and_closes_when_the_service_returns(
    open_gateway: OpenGateway, closed_port: socket.socket, serve_stand_in: ServeStandIn
) -> None:
    port = closed_port.getsockname()[1]
    async with open_gateway(
        exchange_url=f"http://127.0.0.1:{port}", breaker_failures=3, breaker_open_s=1.0
    ) as gateway:
        failures = [(await gateway.get("/api/exchange/v1/x")).json()["type"] for _ in range(3)]
        started = time.perf_counter()
        fast = await gateway.get("/api/exchange/v1/x")
        elapsed = time.perf_counter() - started
        other = await gateway.get("/api/identity/v1/x")  # a breaker per upstream

        with serve_stand_in("exchange", sock=closed_port):
            await asyncio.sleep(1.1)  # the breaker lets a probe through
            resumed = await gateway.get("/api/exchange/v1/x")
            after = await gateway.get("/api/exchange/v1/y")

    assert all(kind.endswith("/upstream-unavailable") for kind in failures)
    assert fast.status_code == 503
    assert fast.headers["content-type"] == "application/problem+json"
    assert int(fast.headers["retry-after"]) >= 1
    assert "paused" in fast.json()["detail"]
    assert elapsed < 0.1
    assert other.status_code == 200
    assert (resumed.status_code, after.status_code) == (200, 200)


async def test_a_slow_service_opens_the_breaker_too(open_gateway: OpenGateway) -> None:
    async with open_gateway(
        upstream_timeout_s=0.2, breaker_failures=2, breaker_open_s=30
    ) as gateway:
        timeouts = [(await gateway.get("/api/identity/slow")).status_code for _ in range(2)]
        started = time.perf_counter()
        fast = await gateway.get("/api/identity/slow")
        elapsed = time.perf_counter() - started

    assert timeouts == [504, 504]
    assert fast.status_code == 503
    assert elapsed < 0.1


def test_a_100_mb_response_raises_the_gateways_memory_by_under_20_mb(
    spawn_gateways: SpawnGateways, auth_headers: dict[str, str]
) -> None:
    with spawn_gateways(1) as [(url, process)]:
        gateway = psutil.Process(process.pid)
        with httpx.Client(base_url=url, headers=auth_headers, timeout=30) as client:
            client.get("/api/exchange/megabytes/2")  # warm up the relay path
            baseline = gateway.memory_info().rss
            peak = baseline
            done = threading.Event()

            def sample() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, gateway.memory_info().rss)
                    time.sleep(0.01)

            sampler = threading.Thread(target=sample)
            sampler.start()
            size = 0
            try:
                with client.stream("GET", "/api/exchange/megabytes/100") as response:
                    for chunk in response.iter_raw():
                        size += len(chunk)
                        if size % (4 * 1024 * 1024) < len(chunk):
                            time.sleep(0.005)  # a caller slower than the service
            finally:
                done.set()
                sampler.join()

    assert size == 100 * 1024 * 1024
    assert peak - baseline <= 20 * 1024 * 1024, f"RSS rose by {(peak - baseline) / 2**20:.1f} MiB"


async def test_server_sent_events_pass_through_unbuffered(
    served_gateway: str, ready: dict[str, StandIn], auth_headers: dict[str, str]
) -> None:
    async with (
        httpx.AsyncClient(base_url=served_gateway, headers=auth_headers, timeout=5) as client,
        client.stream("GET", "/api/exchange/events") as response,
    ):
        lines = response.aiter_lines()
        first = [await anext(lines), await anext(lines)]
        ready["exchange"].gate.set()  # the service sends the second event only now
        rest = [line async for line in lines]

    assert response.headers["content-type"].startswith("text/event-stream")
    assert first == ["event: first", "data: 1"]
    assert [line for line in rest if line] == ["event: second", "data: 2"]
