"""Two replicas on one database: a long poll on one answers as soon as the other commits a
pull delivery for its department (PostgreSQL NOTIFY), also after its listening connection
was cut, and not only when the fallback poll comes round."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from tongban_exchange.delivery import endpoints
from tongban_exchange.main import create_app
from tongban_exchange.settings import ExchangeSettings
from tongban_exchange.testing import TAX_STATUS, USCC, Tokens, grant, tax_status_dataset
from tongban_kit.db.engine import libpq_dsn
from tongban_kit.testing import eventually, running_app

#: Far below the fallback poll, which these tests set to 30 s: only a wake-up answers in time.
WOKEN_WITHIN_S = 0.15


class Replica:
    def __init__(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        self.app, self.client = app, client

    async def listening(self) -> int:
        """The backend pid of its listening connection, once it listens."""
        wakeups = self.app.state.pull_wakeups
        await asyncio.wait_for(wakeups.listening.wait(), 10)
        pid: int = wakeups.backend_pid
        return pid


@pytest.fixture
async def replicas(exchange_settings: ExchangeSettings) -> AsyncIterator[tuple[Replica, Replica]]:
    """Two data-exchange processes' apps on the same database (no workers: the deliveries
    here are made by publishing records over HTTP, in the request's transaction)."""
    settings = exchange_settings.model_copy(update={"run_workers": False})
    async with contextlib.AsyncExitStack() as stack:
        pair = []
        for _ in range(2):
            app = create_app(settings)
            pair.append(Replica(app, await stack.enter_async_context(running_app(app))))
        yield pair[0], pair[1]


@pytest.fixture(autouse=True)
def slow_fallback_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(endpoints, "POLL_S", 30.0)


@pytest.fixture
async def tax_status(
    replicas: tuple[Replica, Replica], as_operator: dict[str, str], as_department: Tokens
) -> str:
    """Tax's record dataset, with market regulation's pull grant of it."""
    _, b = replicas
    await tax_status_dataset(b.client, as_operator)
    await grant(b.client, as_department("market-regulation"), dataset=TAX_STATUS, fields=["status"])
    return TAX_STATUS


async def _woken_after(
    waiting: Replica, committing: Replica, as_department: Tokens, version: int, after: int = 0
) -> tuple[float, dict[str, Any]]:
    """Seconds from ``committing`` answering a publish to the long poll on ``waiting``
    answering, and that poll's page."""
    loop = asyncio.get_running_loop()
    poll = asyncio.create_task(
        waiting.client.get(
            "/v1/deliveries",
            params={"after": after, "wait": 5},
            headers=as_department("market-regulation"),
        )
    )
    await asyncio.sleep(0.3)  # the poll has read nothing and waits
    assert not poll.done()
    published = await committing.client.put(
        f"/v1/datasets/{TAX_STATUS}/records/{USCC}",
        json={"version": version, "data": {"status": "good"}},
        headers=as_department("tax"),
    )
    committed = loop.time()
    assert published.status_code in (200, 201), published.text
    answer = await poll
    assert answer.status_code == 200, answer.text
    return loop.time() - committed, answer.json()


@pytest.mark.usefixtures("tax_status")
async def test_a_long_poll_wakes_when_another_replica_commits_a_pull_delivery(
    replicas: tuple[Replica, Replica], as_department: Tokens
) -> None:
    a, b = replicas
    await a.listening()

    elapsed, page = await _woken_after(a, b, as_department, version=1)

    assert [event["data"] for event in page["events"]] == [{"status": "good"}]
    assert elapsed < WOKEN_WITHIN_S


@pytest.mark.usefixtures("tax_status")
async def test_the_listener_reconnects_after_its_connection_is_terminated(
    replicas: tuple[Replica, Replica], as_department: Tokens, database: str
) -> None:
    a, b = replicas
    cut = await a.listening()
    admin = await asyncpg.connect(libpq_dsn(database))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", cut)
    finally:
        await admin.close()
    await eventually(a.listening, lambda pid: pid not in (None, cut))

    elapsed, page = await _woken_after(a, b, as_department, version=1)

    assert len(page["events"]) == 1
    assert elapsed < WOKEN_WITHIN_S
