"""One transaction per request, committed at the boundary before the response is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

__all__ = ["SessionDep", "get_session"]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield a session inside a transaction; commit if the endpoint returned, else roll back.

    Services never commit: the write, its outbox event and anything else the request did
    commit together here, or not at all.
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session, session.begin():
        yield session


# scope="function": the commit runs when the endpoint returns, before the response is sent,
# so a client never sees 201 for a write whose commit then failed.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
