"""Routing: an accepted event or record goes, as a projection, to every active grant."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_exchange.log import chain
from tongban_exchange.models import Dataset, DatasetEvent, Delivery, Grant
from tongban_exchange.routing.projection import project
from tongban_exchange.routing.pseudonyms import PseudonymSource
from tongban_exchange.runtime import Exchange


def envelope(
    *,
    event_id: str,
    type: str,
    source: str,
    subject: str,
    time: datetime,
    data: dict[str, Any],
    traceparent: str | None = None,
) -> dict[str, Any]:
    """A CloudEvent in structured JSON form: what is stored, pulled and POSTed."""
    value: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "type": type,
        "source": source,
        "subject": subject,
        "time": time.isoformat(),
        "datacontenttype": "application/json",
        "data": data,
    }
    if traceparent:
        value["traceparent"] = traceparent
    return value


def delivery_context(grant_id: object, event_id: str) -> str:
    return f"deliveries/{grant_id}/{event_id}"


async def active_grants(session: AsyncSession, dataset: str) -> Sequence[Grant]:
    return (
        await session.scalars(
            select(Grant).where(Grant.dataset == dataset, Grant.status == "granted")
        )
    ).all()


async def keep(session: AsyncSession, exchange: Exchange, event: dict[str, Any]) -> None:
    """Store the accepted event, sealed, for replays."""
    session.add(
        DatasetEvent(
            dataset=event["type"],
            event_id=event["id"],
            time=datetime.fromisoformat(event["time"]),
            sealed=exchange.seal(event, context=f"dataset_events/{event['id']}"),
        )
    )


async def deliver(
    session: AsyncSession,
    exchange: Exchange,
    *,
    dataset: Dataset,
    event: dict[str, Any],
    grants: Sequence[Grant],
    pseudonyms: PseudonymSource,
) -> list[Delivery]:
    """One delivery per grant, each logged; pull deliveries are available at once."""
    made = []
    for grant in grants:
        data = await project(
            event["data"], grant=grant, personal=dataset.personal, pseudonyms=pseudonyms
        )
        projected = {**event, "data": data, "tongbangrant": str(grant.id)}
        delivery = Delivery(
            grant_id=grant.id,
            department=grant.department,
            dataset=dataset.name,
            event_id=event["id"],
            mode=grant.mode,
            sealed=exchange.seal(projected, context=delivery_context(grant.id, event["id"])),
            status="delivered" if grant.mode == "pull" else "pending",
        )
        session.add(delivery)
        made.append(delivery)
        await chain.append(
            session,
            kind="delivery",
            sender=dataset.owner,
            recipient=grant.department,
            dataset=dataset.name,
            event_id=event["id"],
            payload=json.dumps(data, ensure_ascii=False, sort_keys=True).encode(),
        )
    await session.flush()
    return made
