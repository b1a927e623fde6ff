from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import select

from tongban_exchange.delivery.dispatcher import redeliver
from tongban_exchange.grants.endpoints import SUBSCRIBE_SCOPE
from tongban_exchange.models import Delivery
from tongban_exchange.routing.service import delivery_context
from tongban_kit.auth import AccessClaims, require
from tongban_kit.db import SessionDep
from tongban_kit.errors import Conflict, NotFound

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])
Receiver = Annotated[AccessClaims, Depends(require(SUBSCRIBE_SCOPE, principals=("department",)))]
MAX_PAGE = 500
#: How often a waiting long poll reads again unrung. Commits ring it at once on every replica
#: (``delivery.wakeups``); this only bounds the wait while a replica's listening connection is
#: down. Each read costs ~0.6 ms of this process's CPU: 40 idle polls took 11% of a core at
#: 0.25 s, 4% at 1 s.
POLL_S = 1.0


class PullPage(BaseModel):
    events: list[dict[str, Any]]
    next: int


class DeliveryStatus(BaseModel):
    id: int
    event_id: str
    dataset: str
    mode: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@router.get("", response_model=PullPage)
async def pull(
    request: Request,
    caller: Receiver,
    after: Annotated[int, Query(ge=0, description="The `next` cursor of the last page.")] = 0,
    wait: Annotated[float, Query(ge=0, description="Seconds to wait for news.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> Response:
    """The caller's pull deliveries after a cursor, oldest first; with `wait`, a long poll
    that answers as soon as there is one (or empty after `wait` seconds, capped by the
    `pull_max_wait_s` setting).

    Access: departments with `exchange:subscribe`, for their own pull grants. Each event is
    a CloudEvent in JSON with `cursor`; ask again with `after=<next>`.
    """
    exchange = request.app.state.exchange
    deadline = asyncio.get_running_loop().time() + min(wait, exchange.settings.pull_max_wait_s)
    sessionmaker = request.app.state.sessionmaker
    loop = asyncio.get_running_loop()
    while True:
        bell = exchange.pulls.bell(caller.department)
        async with sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Delivery.id, Delivery.grant_id, Delivery.event_id, Delivery.sealed)
                    .where(
                        Delivery.department == caller.department,
                        Delivery.id > after,
                        Delivery.mode == "pull",
                        Delivery.status == "delivered",
                    )
                    .order_by(Delivery.id)
                    .limit(limit)
                )
            ).all()
        if rows or loop.time() >= deadline:
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(bell.wait(), min(POLL_S, max(deadline - loop.time(), 0)))
    # The page is put together from the stored JSON texts as they are (each an object, so
    # its closing brace makes room for the cursor): no parsing and dumping per event.
    events = ",".join(
        exchange.unseal_text(row.sealed, context=delivery_context(row.grant_id, row.event_id))[:-1]
        + f',"cursor":{row.id}}}'
        for row in rows
    )
    next_cursor = rows[-1].id if rows else after
    return Response(
        f'{{"events":[{events}],"next":{next_cursor}}}'.encode(), media_type="application/json"
    )


@router.get("/undelivered", response_model=list[DeliveryStatus])
async def undelivered(session: SessionDep, caller: Receiver) -> list[DeliveryStatus]:
    """The caller's Kafka and webhook deliveries still pending or dead-lettered.

    Access: departments with `exchange:subscribe`, their own only.
    """
    rows = await session.scalars(
        select(Delivery)
        .where(Delivery.department == caller.department, Delivery.status.in_(("pending", "dead")))
        .order_by(Delivery.id)
        .limit(1000)
    )
    return [DeliveryStatus.model_validate(row, from_attributes=True) for row in rows]


@router.post("/{delivery_id}/redeliver", status_code=202, response_model=DeliveryStatus)
async def redeliver_one(delivery_id: int, session: SessionDep, caller: Receiver) -> DeliveryStatus:
    """Deliver again (for instance a dead-lettered webhook), from a fresh retry period.

    Access: departments with `exchange:subscribe`, their own deliveries only (404 for
    others). 409 for pull deliveries (pull again from an earlier cursor instead).
    """
    delivery = await session.get(Delivery, delivery_id)
    if delivery is None or delivery.department != caller.department:
        raise NotFound(f"no delivery {delivery_id}")
    if delivery.mode == "pull":
        raise Conflict("pull deliveries are not pushed: pull again from an earlier cursor")
    await redeliver(session, delivery=delivery)
    await session.refresh(delivery)
    return DeliveryStatus.model_validate(delivery, from_attributes=True)
