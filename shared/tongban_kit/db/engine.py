"""Engines and session factories, built in a service's lifespan (never at import time)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

__all__ = ["build_engine", "build_sessionmaker", "in_transaction", "libpq_dsn"]

T = TypeVar("T")


def build_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def build_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: objects stay readable after the boundary commits them.
    return async_sessionmaker(engine, expire_on_commit=False)


def libpq_dsn(url: str) -> str:
    """The plain ``postgresql://`` form of a SQLAlchemy URL, for asyncpg used directly."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def in_transaction(database_url: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction on a short-lived engine: for operator commands, which
    open the database once, do one thing and exit."""
    engine = build_engine(database_url, pool_size=1)
    try:
        async with build_sessionmaker(engine)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()
