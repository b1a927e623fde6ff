"""Routing: an accepted event or record goes, as a projection, to every active grant.

``plan`` works out the deliveries and log rows of one event; ``write`` stores those of many
events with one statement per table, so a batch of events costs a few round trips.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import event as orm_event
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from tongban_exchange.delivery import wakeups
from tongban_exchange.delivery.attempt import Attempt
from tongban_exchange.log import chain
from tongban_exchange.models import Dataset, DatasetEvent, Delivery, Grant
from tongban_exchange.national import repository as national
from tongban_exchange.routing.projection import needed_pseudonyms, project
from tongban_exchange.routing.pseudonyms import PseudonymSource
from tongban_exchange.runtime import Exchange
from tongban_kit.db.bulk import as_columns, insert_columns
from tongban_kit.events.compact import compact_json


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
    """Rows to write for a set of events.

    ``handoff_until``: set, the Kafka and webhook deliveries are leased to this process's
    dispatcher until then and offered to it, from memory, the moment the transaction commits;
    unset (no dispatcher runs here), the dispatchers poll them.
    """

    exchange: Exchange | None = None
    handoff_until: datetime | None = None
    kept: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    # One per delivery: the projected event and its JSON text.
    projections: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    urls: list[str | None] = field(default_factory=list)  # one per delivery
    log: list[chain.Message] = field(default_factory=list)
    forwards: list[dict[str, Any]] = field(default_factory=list)  # national, to central
    fresh: list[Attempt] = field(default_factory=list)

    @classmethod
    def of(cls, exchange: Exchange) -> Plan:
        """A plan whose deliveries go straight to this process's dispatcher, if it runs, and
        whose pull deliveries wake this process's long polls."""
        if exchange.dispatcher is None:
            return cls(exchange=exchange)
        lease = timedelta(seconds=exchange.settings.handoff_lease_s)
        return cls(exchange=exchange, handoff_until=datetime.now(UTC) + lease)


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
    prefetched: bool = False,
) -> None:
    """One delivery per grant, each logged; pull deliveries are available at once.
    ``prefetched``: the caller asked for this event's pseudonyms already (with its batch's)."""
    if not prefetched:
        await prefetch_pseudonyms(pseudonyms, [(dataset, event["data"], grants)])
    for grant in grants:
        data = await project(
            event["data"], grant=grant, personal=dataset.personal, pseudonyms=pseudonyms
        )
        projected = {**event, "data": data, "tongbangrant": str(grant.id)}
        text = compact_json(projected)
        row = {
            "grant_id": grant.id,
            "department": grant.department,
            "dataset": dataset.name,
            "event_id": event["id"],
            "mode": grant.mode,
            "sealed": exchange.cipher.encrypt(
                text, context=delivery_context(grant.id, event["id"])
            ),
            "status": "delivered" if grant.mode == "pull" else "pending",
            "attempts": 0,
        }
        if plan.handoff_until is not None:
            row["next_attempt_at"] = plan.handoff_until
        plan.deliveries.append(row)
        plan.projections.append((projected, text))
        plan.urls.append(grant.webhook_url)
        plan.log.append(
            chain.Message(
                kind="delivery",
                sender=dataset.owner,
                recipient=grant.department,
                dataset=dataset.name,
                event_id=event["id"],
                # The delivered bytes: the same text is posted, pulled and sealed.
                payload=text.encode(),
            )
        )


async def prefetch_pseudonyms(
    pseudonyms: PseudonymSource,
    events: Iterable[tuple[Dataset, dict[str, Any], Sequence[Grant]]],
) -> None:
    """Ask for every pseudonym the projections of these events (data, with their dataset and
    grants) will need in one go, so that planning them asks identity nothing one by one."""
    pairs: set[tuple[str, str]] = set()
    for dataset, data, grants in events:
        pairs |= needed_pseudonyms(data, grants=grants, personal=dataset.personal)
    if pairs:
        await pseudonyms.prefetch(pairs)


async def write(session: AsyncSession, plan: Plan) -> None:
    """Store a plan: kept events, deliveries, their log rows and national forwards, in the
    caller's transaction; a handoff plan's Kafka and webhook deliveries go to the dispatcher
    when that transaction commits (and nowhere if it rolls back)."""
    if plan.kept:
        await insert_columns(session, DatasetEvent.__table__, as_columns(plan.kept))
    if plan.deliveries:
        made = await insert_columns(
            session,
            Delivery.__table__,
            as_columns(plan.deliveries),
            returning=("id", "grant_id", "event_id"),
        )
        id_of = {(grant_id, event_id): id_ for id_, grant_id, event_id in made}
        ids = [id_of[(row["grant_id"], row["event_id"])] for row in plan.deliveries]
        if plan.handoff_until is not None:
            plan.fresh = [
                Attempt(
                    id=id_,
                    grant_id=row["grant_id"],
                    department=row["department"],
                    dataset=row["dataset"],
                    mode=row["mode"],
                    value=value,
                    text=text,
                    url=url,
                )
                for id_, row, (value, text), url in zip(
                    ids, plan.deliveries, plan.projections, plan.urls, strict=True
                )
                if row["mode"] != "pull"
            ]
        if plan.exchange is not None:
            orm_event.listen(
                session.sync_session, "after_commit", partial(_committed, plan), once=True
            )
        # Every replica's long polls of these departments wake when this transaction commits.
        await wakeups.notify(
            session, (d["department"] for d in plan.deliveries if d["mode"] == "pull")
        )
    await national.enqueue(session, plan.forwards)
    await chain.append(session, *plan.log)


def _committed(plan: Plan, _: Session) -> None:
    exchange = plan.exchange
    assert exchange is not None
    if plan.fresh and exchange.dispatcher is not None:
        exchange.dispatcher.offer(plan.fresh)
    exchange.pulls.ring(d["department"] for d in plan.deliveries if d["mode"] == "pull")


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
    """Route one event now (publishes); returns the number of deliveries."""
    plan = Plan.of(exchange)
    if kept:
        keep(plan, exchange, event)
    await plan_deliveries(
        plan, exchange, dataset=dataset, event=event, grants=grants, pseudonyms=pseudonyms
    )
    await write(session, plan)
    return len(plan.deliveries)
