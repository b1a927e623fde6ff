"""A tiny service built only from the kit, so the kit is tested without any real service.

Imported by the kit's tests as ``kit_app`` (``shared/tests`` is on pytest's pythonpath)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Column, MetaData, String, Table, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from tongban_kit.db import SessionDep, new_metadata
from tongban_kit.errors import Conflict
from tongban_kit.events import CloudEvent
from tongban_kit.inbox import Subscription
from tongban_kit.outbox import add_event, kit_metadata, outbox
from tongban_kit.service import create_service_app
from tongban_kit.settings import NodeSettings, ServiceSettings
from tongban_kit.testing import running_app

NOTE_CREATED = "gov.tongban.testkit.note.created.v1"
metadata: MetaData = new_metadata()
notes = Table("notes", metadata, Column("title", String(50), primary_key=True))
applied = Table("applied", metadata, Column("event_id", String(64), primary_key=True))


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=50)
    pages: int = 1


router = APIRouter()


@router.post("/notes", status_code=201)
async def create_note(body: NoteIn, session: SessionDep, request: Request) -> dict[str, str]:
    try:
        async with session.begin_nested():
            await session.execute(insert(notes).values(title=body.title))
    except IntegrityError as exc:
        raise Conflict("a note with that title exists") from exc
    node: NodeSettings = request.app.state.settings.node
    await add_event(
        session,
        CloudEvent.new(
            NOTE_CREATED,
            source=f"/nodes/{node.node_code}/testkit",
            subject=body.title,
            data={"title": body.title},
        ),
    )
    return {"title": body.title}


@router.get("/notes")
async def list_notes(session: SessionDep, longer_than: int = 0) -> list[str]:
    # No bound on longer_than on purpose: the kit must refuse what PostgreSQL cannot hold.
    rows = await session.scalars(
        select(notes.c.title).where(func.length(notes.c.title) > longer_than)
    )
    return list(rows)


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internals must not leak")


async def apply_note(session: AsyncSession, event: CloudEvent) -> None:
    if event.data.get("title") == "poison":
        raise ValueError("this note cannot be applied")
    await session.execute(insert(applied).values(event_id=event.id))


SUBSCRIPTION = Subscription("notes", ("testkit.events",), {NOTE_CREATED: apply_note})


@dataclass
class KitService:
    app: FastAPI
    client: httpx.AsyncClient
    engine: AsyncEngine
    node: NodeSettings

    async def count(self, table: Table) -> int:
        async with self.engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def kit_service_fixture(
    make_database, node_settings: NodeSettings
) -> AsyncIterator[KitService]:  # type: ignore[no-untyped-def]
    url = await make_database(None)
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(kit_metadata.create_all)
        await conn.run_sync(metadata.create_all)
    settings = ServiceSettings(service_name="testkit", database_url=url, node=node_settings)
    app = create_service_app(
        settings=settings,
        title="kit test service",
        description="",
        routers=[router],
        subscriptions=[SUBSCRIPTION],
    )
    async with running_app(app) as client:
        yield KitService(app, client, engine, node_settings)
    await engine.dispose()


def new_title() -> str:
    return f"note-{uuid.uuid4().hex[:8]}"


__all__ = [
    "NOTE_CREATED",
    "SUBSCRIPTION",
    "KitService",
    "applied",
    "kit_service_fixture",
    "new_title",
    "notes",
    "outbox",
]
