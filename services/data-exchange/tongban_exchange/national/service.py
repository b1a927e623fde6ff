"""The central node's side: a national event another node forwarded is taken in once.

Rules, in order (nothing is written unless all hold): the sender is an active node of the
directory (its assertion verified by the endpoint); the event's ``source`` is one of that
node's (``/nodes/<code>/…``); its type is a dataset of this catalogue with scope
``national``; its data validate against the type's schema. Then, in one transaction: the
event id goes into the inbox (a second arrival of the same id changes nothing), the arrival
is written to the message log, the event is kept for replays, and it is routed to this node's
grants exactly as a local event would be (same projection, pseudonyms and delivery modes).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_exchange.log import chain
from tongban_exchange.models import Dataset
from tongban_exchange.national.schemas import NationalEventIn
from tongban_exchange.routing import service as routing
from tongban_exchange.runtime import Exchange
from tongban_kit.errors import Forbidden, TongbanError
from tongban_kit.events import CloudEvent, InvalidEventData, load_catalogue
from tongban_kit.outbox import inbox

__all__ = ["CONSUMER", "InvalidNationalEvent", "accept", "take_in"]

#: The inbox name under which arrivals are deduplicated.
CONSUMER = "exchange.national"


class InvalidNationalEvent(TongbanError):
    status, title, type_slug = 422, "Unprocessable Content", "invalid-national-event"


async def accept(
    session: AsyncSession, exchange: Exchange, *, body: NationalEventIn, from_node: str
) -> bool:
    """Take in ``body`` forwarded by node ``from_node``; False when its id arrived before."""
    if not body.source.startswith(f"/nodes/{from_node}/"):
        raise Forbidden(f"Node {from_node} may forward only its own events (/nodes/{from_node}/…).")
    return await take_in(session, exchange, body=body, sender=from_node)


async def take_in(
    session: AsyncSession, exchange: Exchange, *, body: NationalEventIn, sender: str
) -> bool:
    """Check, deduplicate, log and route a national event that node ``sender`` handed over
    (a regional node's forward at central; central's feed at a regional node)."""
    dataset = await session.get(Dataset, body.type)
    if dataset is None or dataset.kind != "event" or dataset.scope != "national":
        raise InvalidNationalEvent(f"{body.type} is not a national dataset of this catalogue.")
    event = CloudEvent(
        type=body.type,
        source=body.source,
        subject=body.subject,
        data=body.data,
        id=body.id,
        time=body.time,
        traceparent=body.traceparent,
    )
    try:
        load_catalogue().validate(event)
    except InvalidEventData as exc:
        raise InvalidNationalEvent(f"The event's data do not validate: {exc}") from None
    claimed = await session.scalar(
        pg_insert(inbox)
        .values(consumer=CONSUMER, event_id=body.id, event_type=body.type)
        .on_conflict_do_nothing()
        .returning(inbox.c.event_id)
    )
    if claimed is None:
        return False
    value: dict[str, Any] = routing.envelope(
        event_id=event.id,
        type=event.type,
        source=event.source,
        subject=event.subject,
        time=event.time,
        data=event.data,
        traceparent=event.traceparent,
    )
    plan = routing.Plan.of(exchange)
    plan.log.append(
        chain.Message(
            kind="arrival",
            sender=f"node:{sender}",
            recipient="node",
            dataset=dataset.name,
            event_id=event.id,
            payload=json.dumps(event.data, ensure_ascii=False, sort_keys=True).encode(),
        )
    )
    routing.keep(plan, exchange, value)
    grants = await routing.active_grants(session, [dataset.name])
    await routing.plan_deliveries(
        plan,
        exchange,
        dataset=dataset,
        event=value,
        grants=grants.get(dataset.name, []),
        pseudonyms=exchange.extra["pseudonyms"],
    )
    await routing.write(session, plan)
    return True
