"""``insert_columns``: many rows in one statement, inside the caller's transaction whether it is
the transaction's first statement (through SQLAlchemy) or a later one (on asyncpg directly)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Uuid, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tongban_kit.db import build_engine
from tongban_kit.db.bulk import as_columns, insert_columns
from tongban_kit.testing.plugin import MakeDatabase

metadata = MetaData()
items = Table(
    "bulk_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", Uuid, nullable=False),
    Column("name", String(20), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)


@pytest.fixture
async def sessions(make_database: MakeDatabase) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = build_engine(await make_database(None))
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


def _rows(first: int, count: int) -> list[dict[str, object]]:
    at = datetime(2026, 12, 4, tzinfo=UTC)
    return [
        {"id": i, "key": uuid.uuid4(), "name": f"张三{i}", "at": at}
        for i in range(first, first + count)
    ]


async def _count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(items)) or 0)


@pytest.mark.parametrize("first_statement", [True, False])
async def test_rows_are_written_and_returned_by_position(
    sessions: async_sessionmaker[AsyncSession], first_statement: bool
) -> None:
    rows = _rows(1, 300)
    async with sessions() as session, session.begin():
        if not first_statement:
            await session.execute(text("SELECT 1"))
        made = await insert_columns(session, items, as_columns(rows), returning=("id", "key"))
    assert sorted((r[0], r[1]) for r in made) == [(r["id"], r["key"]) for r in rows]
    async with sessions() as session:
        stored = (await session.execute(select(items).order_by(items.c.id))).all()
    assert [(r.id, r.key, r.name, r.at) for r in stored] == [
        (r["id"], r["key"], r["name"], r["at"]) for r in rows
    ]


@pytest.mark.parametrize("first_statement", [True, False])
async def test_a_rolled_back_transaction_leaves_no_row(
    sessions: async_sessionmaker[AsyncSession], first_statement: bool
) -> None:
    async with sessions() as session:
        transaction = await session.begin()
        if not first_statement:
            await session.execute(text("SELECT 1"))
        await insert_columns(session, items, as_columns(_rows(1, 10)))
        await insert_columns(session, items, as_columns(_rows(11, 10)))
        await transaction.rollback()
    assert await _count(sessions) == 0


async def test_conflicting_rows_are_skipped_when_asked(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        await insert_columns(session, items, as_columns(_rows(1, 5)))
        made = await insert_columns(
            session, items, as_columns(_rows(4, 5)), returning=("id",), skip_conflicts=True
        )
    assert sorted(r[0] for r in made) == [6, 7, 8]
    assert await _count(sessions) == 8


async def test_columns_of_unequal_length_are_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        with pytest.raises(ValueError, match="unequal"):
            await insert_columns(session, items, {"id": [1, 2], "name": ["a"]})
        assert await insert_columns(session, items, {"id": []}) == []
