"""Connections the server closed are not handed to requests: after PostgreSQL terminates a
service's backends or restarts under the running service, every later request succeeds (the
engine has no pre-ping; its checkout hook drops connections asyncpg saw closed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from kit_app import KitService, kit_service_fixture, metadata, new_title, notes, router
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tongban_kit.infra import EmbeddedPostgres, free_port
from tongban_kit.outbox import kit_metadata
from tongban_kit.service import create_service_app
from tongban_kit.settings import NodeSettings, ServiceSettings
from tongban_kit.testing import running_app


async def _fill_pool(service: KitService, in_flight: int = 6) -> None:
    """Several requests at once, so the pool holds several idle connections afterwards."""
    answers = await asyncio.gather(
        *(service.client.post("/notes", json={"title": new_title()}) for _ in range(in_flight))
    )
    assert [a.status_code for a in answers] == [201] * in_flight


async def _terminate_backends(url: str) -> int:
    """``pg_terminate_backend`` every other session on the service's database."""
    parsed = make_url(url)
    conn = await asyncpg.connect(
        parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()) AS terminated",
                parsed.database,
            )
        )
    finally:
        await conn.close()


@pytest.fixture
async def kit_service(make_database, node_settings: NodeSettings) -> AsyncIterator[KitService]:  # type: ignore[no-untyped-def]
    async for service in kit_service_fixture(make_database, node_settings):
        yield service


async def test_requests_succeed_after_the_backends_were_terminated(
    kit_service: KitService,
) -> None:
    await _fill_pool(kit_service)
    url = kit_service.app.state.settings.database_url

    assert await _terminate_backends(url) >= 2
    await asyncio.sleep(0.3)  # the event loop reads the end of each stream

    for _ in range(20):
        response = await kit_service.client.post("/notes", json={"title": new_title()})
        assert response.status_code == 201, response.text
    await kit_service.engine.dispose()  # the test's own engine lost its connection too
    assert await kit_service.count(notes) == 6 + 20


async def test_requests_succeed_after_postgres_restarted_under_the_service(
    tmp_path: Path, node_settings: NodeSettings
) -> None:
    postgres = EmbeddedPostgres(tmp_path / "pg", port=free_port(), log_path=tmp_path / "pg.log")
    postgres.start()
    try:
        url = postgres.async_url("postgres")
        setup = create_async_engine(url)
        async with setup.begin() as conn:
            await conn.run_sync(kit_metadata.create_all)
            await conn.run_sync(metadata.create_all)
        await setup.dispose()
        settings = ServiceSettings(
            service_name="testkit", database_url=url, node=node_settings, run_workers=False
        )
        app = create_service_app(settings=settings, title="kit", description="", routers=[router])
        async with running_app(app) as client:
            service = KitService(app, client, app.state.engine, node_settings)
            await _fill_pool(service)

            await asyncio.to_thread(postgres.restart)
            await asyncio.sleep(0.3)

            for _ in range(20):
                response = await client.post("/notes", json={"title": new_title()})
                assert response.status_code == 201, response.text

            await asyncio.to_thread(postgres.stop)
            down = await client.post("/notes", json={"title": new_title()})
            assert down.status_code == 503, down.text  # unreachable: retry later, not a 500
            assert down.headers["retry-after"] == "1"
    finally:
        postgres.stop()
