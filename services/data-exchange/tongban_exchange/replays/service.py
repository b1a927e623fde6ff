from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_exchange.catalogue import service as catalogue
from tongban_exchange.models import DatasetEvent, Grant
from tongban_exchange.routing import service as routing
from tongban_exchange.runtime import Exchange
from tongban_kit.errors import Conflict

#: One replay makes at most this many deliveries; ask again from the last sequence for more.
MAX_EVENTS = 10_000


async def replay(
    session: AsyncSession,
    exchange: Exchange,
    *,
    dataset_name: str,
    department: str,
    from_seq: int | None,
    from_time: datetime | None,
) -> tuple[Grant, int, int | None]:
    """Deliver the dataset's kept events again through the department's active grant (its
    fields, its mode). Returns the grant, the number of events and the last sequence."""
    dataset = await catalogue.get(session, dataset_name)
    grant = await session.scalar(
        select(Grant)
        .where(
            Grant.dataset == dataset.name,
            Grant.department == department,
            Grant.status == "granted",
        )
        .order_by(Grant.decided_at.desc())
        .limit(1)
    )
    if grant is None:
        raise Conflict(f"{department} holds no active grant for {dataset.name}")
    query = select(DatasetEvent).where(DatasetEvent.dataset == dataset.name)
    if from_seq is not None:
        query = query.where(DatasetEvent.seq >= from_seq)
    if from_time is not None:
        query = query.where(DatasetEvent.time >= from_time)
    kept = (await session.scalars(query.order_by(DatasetEvent.seq).limit(MAX_EVENTS))).all()
    plan = routing.Plan.of(exchange)
    events = [
        exchange.unseal(row.sealed, context=routing.kept_context(row.event_id)) for row in kept
    ]
    await routing.prefetch_pseudonyms(
        exchange.extra["pseudonyms"], [(dataset, event["data"], [grant]) for event in events]
    )
    for event in events:
        await routing.plan_deliveries(
            plan,
            exchange,
            dataset=dataset,
            event=event,
            grants=[grant],
            pseudonyms=exchange.extra["pseudonyms"],
        )
    await routing.write(session, plan)
    return grant, len(kept), kept[-1].seq if kept else None
