"""Engines and session factories, built in a service's lifespan (never at import time)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

__all__ = ["build_engine", "build_sessionmaker", "in_transaction", "libpq_dsn"]

T = TypeVar("T")


def build_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """A pooled engine that hands out only connections the server has not closed.

    No ``pool_pre_ping`` (a round trip on every checkout, a large share of a short request):
    when PostgreSQL restarts or terminates a backend, it closes the socket, asyncpg notices
    the end of the stream in the event loop, and ``_refuse_closed`` (on checkout) makes the
    pool drop that connection and try another or a new one. A connection that dies in the
    middle of a request fails that request (a 503 with ``Retry-After``, ``tongban_kit.errors``)
    and SQLAlchemy invalidates the pool's older connections, so later requests reconnect.
    """
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
    )
    event.listen(engine.sync_engine.pool, "checkout", _refuse_closed)
    return engine


def _refuse_closed(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Pool ``checkout`` hook: ``DisconnectionError`` makes the pool discard the connection and
    check out another (SQLAlchemy retries up to three times, then connects afresh)."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    if is_closed is not None and is_closed():
        raise DisconnectionError("the database server closed this connection")


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
