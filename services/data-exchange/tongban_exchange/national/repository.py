"""SQL of the national forwards (the outbox of the link to central)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_exchange.models import Dataset, DatasetEvent, NationalCursor, NationalForward

#: pg_advisory_xact_lock key of the forwarder ("tbnat"): one sender at a time keeps the order.
FORWARD_LOCK = 0x74626E6174
#: pg_advisory_xact_lock key of the feed reader ("tbfed").
FEED_LOCK = 0x7462666564


async def enqueue(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        statement = insert(NationalForward).values(list(rows))
        await session.execute(statement.on_conflict_do_nothing(index_elements=["event_id"]))


async def take_lock(session: AsyncSession, key: int = FORWARD_LOCK) -> bool:
    """A worker's lock for this transaction, or False if another replica holds it."""
    return bool(await session.scalar(select(func.pg_try_advisory_xact_lock(key))))


async def feed(
    session: AsyncSession, *, after: int, limit: int, settle_s: float
) -> list[DatasetEvent]:
    """Kept events of national datasets after ``after``, received at least ``settle_s`` ago
    (so that a transaction still open with a lower sequence number is not skipped)."""
    rows = await session.scalars(
        select(DatasetEvent)
        .join(Dataset, Dataset.name == DatasetEvent.dataset)
        .where(
            Dataset.scope == "national",
            Dataset.kind == "event",
            DatasetEvent.seq > after,
            DatasetEvent.received_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, settle_s),
        )
        .order_by(DatasetEvent.seq)
        .limit(limit)
    )
    return list(rows)


async def cursor(session: AsyncSession) -> int:
    value = await session.scalar(select(NationalCursor.after).where(NationalCursor.id == 1))
    return int(value or 0)


async def set_cursor(session: AsyncSession, after: int) -> None:
    statement = insert(NationalCursor).values(id=1, after=after)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["id"], set_={"after": after, "updated_at": func.now()}
        )
    )


async def pending(session: AsyncSession, limit: int) -> list[NationalForward]:
    """The oldest pending forwards, in order."""
    rows = await session.scalars(
        select(NationalForward)
        .where(NationalForward.status == "pending")
        .order_by(NationalForward.seq)
        .limit(limit)
    )
    return list(rows)


async def mark(session: AsyncSession, seq: int, **values: Any) -> None:
    await session.execute(
        update(NationalForward).where(NationalForward.seq == seq).values(**values)
    )


async def backlog(session: AsyncSession) -> tuple[int, datetime | None]:
    """How many forwards are pending and when the oldest was queued (the partial index)."""
    pending_only = NationalForward.status == "pending"
    count = await session.scalar(select(func.count()).where(pending_only))
    oldest: datetime | None = await session.scalar(
        select(NationalForward.created_at)
        .where(pending_only)
        .order_by(NationalForward.seq)
        .limit(1)
    )
    return int(count or 0), oldest


async def prune(session: AsyncSession, *, before: datetime) -> int:
    """Forget forwards central took before ``before`` (pending and refused ones stay)."""
    result = await session.execute(
        delete(NationalForward).where(
            NationalForward.status == "forwarded", NationalForward.forwarded_at < before
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def summary(session: AsyncSession) -> dict[str, Any]:
    """Counts per status and the oldest pending forward's creation time (the admin view)."""
    counts = {
        status: count
        for status, count in (
            await session.execute(
                select(NationalForward.status, func.count()).group_by(NationalForward.status)
            )
        ).all()
    }
    oldest: datetime | None = await session.scalar(
        select(func.min(NationalForward.created_at)).where(NationalForward.status == "pending")
    )
    return {"counts": counts, "oldest_pending_at": oldest}


async def recent(session: AsyncSession, *, status: str | None, limit: int) -> list[NationalForward]:
    statement = select(NationalForward).order_by(NationalForward.seq.desc()).limit(limit)
    if status is not None:
        statement = statement.where(NationalForward.status == status)
    return list(await session.scalars(statement))
