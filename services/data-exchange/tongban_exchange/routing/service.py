"""Routing: an accepted event or record goes, as a projection, to every active grant.

``plan`` works out the deliveries and log rows of one event; ``write`` stores those of many
events with one statement per table, so a batch of events costs a few round trips.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_exchange.log import chain
from tongban_exchange.models import Dataset, DatasetEvent, Delivery, Grant
from tongban_exchange.national import repository as national
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


def kept_context(event_id: str) -> str:
    return f"dataset_events/{event_id}"


async def active_grants(session: AsyncSession, datasets: Iterable[str]) -> dict[str, list[Grant]]:
    """The granted grants of each dataset."""
    by_dataset: dict[str, list[Grant]] = {}
    rows = await session.scalars(
        select(Grant).where(Grant.dataset.in_(set(datasets)), Grant.status == "granted")
    )
    for grant in rows:
        by_dataset.setdefault(grant.dataset, []).append(grant)
    return by_dataset


@dataclass
class Plan:
    """Rows to write for a set of events."""

    kept: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    log: list[chain.Message] = field(default_factory=list)
    forwards: list[dict[str, Any]] = field(default_factory=list)  # national, to central


def keep(plan: Plan, exchange: Exchange, event: dict[str, Any]) -> None:
    """Keep the accepted event, sealed, for replays."""
    plan.kept.append(
        {
            "dataset": event["type"],
            "event_id": event["id"],
            "time": datetime.fromisoformat(event["time"]),
            "sealed": exchange.seal(event, context=kept_context(event["id"])),
        }
    )


async def plan_deliveries(
    plan: Plan,
    exchange: Exchange,
    *,
    dataset: Dataset,
    event: dict[str, Any],
    grants: Sequence[Grant],
    pseudonyms: PseudonymSource,
) -> None:
    """One delivery per grant, each logged; pull deliveries are available at once."""
    for grant in grants:
        data = await project(
            event["data"], grant=grant, personal=dataset.personal, pseudonyms=pseudonyms
        )
        projected = {**event, "data": data, "tongbangrant": str(grant.id)}
        plan.deliveries.append(
            {
                "grant_id": grant.id,
                "department": grant.department,
                "dataset": dataset.name,
                "event_id": event["id"],
                "mode": grant.mode,
                "sealed": exchange.seal(projected, context=delivery_context(grant.id, event["id"])),
                "status": "delivered" if grant.mode == "pull" else "pending",
            }
        )
        plan.log.append(
            chain.Message(
                kind="delivery",
                sender=dataset.owner,
                recipient=grant.department,
                dataset=dataset.name,
                event_id=event["id"],
                payload=json.dumps(data, ensure_ascii=False, sort_keys=True).encode(),
            )
        )


async def write(session: AsyncSession, plan: Plan) -> None:
    """Store a plan: kept events, deliveries, their log rows and national forwards, in the
    caller's transaction."""
    if plan.kept:
        await session.execute(insert(DatasetEvent.__table__), plan.kept)
    if plan.deliveries:
        await session.execute(insert(Delivery.__table__), plan.deliveries)
    await national.enqueue(session, plan.forwards)
    await chain.append(session, *plan.log)


async def deliver(
    session: AsyncSession,
    exchange: Exchange,
    *,
    dataset: Dataset,
    event: dict[str, Any],
    grants: Sequence[Grant],
    pseudonyms: PseudonymSource,
    kept: bool = True,
) -> int:
    """Route one event now (publishes and replays); returns the number of deliveries."""
    plan = Plan()
    if kept:
        keep(plan, exchange, event)
    await plan_deliveries(
        plan, exchange, dataset=dataset, event=event, grants=grants, pseudonyms=pseudonyms
    )
    await write(session, plan)
    return len(plan.deliveries)
