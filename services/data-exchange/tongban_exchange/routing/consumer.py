"""The routing consumer: every domain topic, every event type, in batches.

It keeps the kit's inbox contract (``tongban_kit.inbox``: each event applied once, its effect
committed with its id; a bad event dead-lettered with the reason, never blocking the partition)
but applies a whole fetched batch in one transaction, with one statement per table: routing
is the platform's hot path, and one transaction per event spends its time waiting on commits.
If a batch fails for a reason that is not an outage, its events are applied one at a time so
that only the bad one is dead-lettered.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRecord
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tongban_exchange.models import Dataset
from tongban_exchange.national.forwarder import queued
from tongban_exchange.records.handlers import READ_MODELS
from tongban_exchange.routing import service
from tongban_exchange.runtime import Exchange
from tongban_kit.consuming import ConsumerLoop
from tongban_kit.db.bulk import insert_columns
from tongban_kit.errors import database_unavailable
from tongban_kit.events import CloudEvent, InvalidEventData, load_catalogue
from tongban_kit.events.envelope import InvalidEvent
from tongban_kit.observability.metrics import ServiceMetrics
from tongban_kit.outbox import dead_letters, inbox

logger = logging.getLogger("tongban.exchange.routing")

#: The inbox and dead-letter name of this consumer, and (namespaced) its consumer group.
CONSUMER = "exchange.routing"
MAX_BATCH = 500


def is_transient(exc: BaseException) -> bool:
    """An outage (database, broker, identity), not the event's fault: retry the batch later.
    The same rule as the kit's inbox."""
    return isinstance(exc, ConnectionError) or database_unavailable(exc)


def routed_topics() -> tuple[str, ...]:
    """Every topic the catalogue's event types travel on."""
    return tuple(sorted({info.topic for info in load_catalogue().types.values()}))


@dataclass
class _Item:
    record: ConsumerRecord[Any, Any]
    event: CloudEvent | None
    problem: str | None = None


class RoutingConsumer:
    """Routes every catalogued event; the kit's ``ConsumerLoop`` keeps its Kafka client alive
    (restarted on errors and when it stalls)."""

    def __init__(
        self,
        exchange: Exchange,
        sessionmaker: async_sessionmaker[AsyncSession],
        metrics: ServiceMetrics,
    ) -> None:
        node = exchange.settings.node
        self.exchange = exchange
        self.sessionmaker = sessionmaker
        self.topics = [node.topic(t) for t in routed_topics()]
        self.group_id = node.topic(CONSUMER)
        self.loop = ConsumerLoop(
            name=CONSUMER,
            node=node,
            topics=self.topics,
            group_id=self.group_id,
            handle=self.handle,
            metrics=metrics,
            max_records=MAX_BATCH,
        )

    def stop(self) -> None:
        self.loop.stop()

    async def run(self) -> None:
        await self.loop.run()

    async def handle(self, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        """Apply a batch; on a failure that is not an outage, one event at a time."""
        items = [self._parse(record) for record in records]
        try:
            await self._apply(items)
        except Exception as exc:
            if is_transient(exc) or len(items) == 1:
                raise
            logger.warning("batch of %d failed (%s): applying one at a time", len(items), exc)
            for item in items:
                try:
                    await self._apply([item])
                except Exception as single:
                    if is_transient(single):
                        raise
                    logger.exception(
                        "event at %s@%d not applied", item.record.topic, item.record.offset
                    )
                    item.problem = f"{type(single).__name__}: {single}"
                    await self._apply([item])

    def _parse(self, record: ConsumerRecord[Any, Any]) -> _Item:
        try:
            return _Item(record, CloudEvent.from_kafka(record.key, record.value, record.headers))
        except InvalidEvent as exc:
            return _Item(record, None, f"invalid event: {exc}")

    async def _apply(self, items: Sequence[_Item]) -> None:
        exchange, metrics = self.exchange, self.exchange.metrics
        pulled: list[dict[str, Any]] = []
        async with self.sessionmaker() as session, session.begin():
            claimed = await self._claim(session, [i.event for i in items if i.event is not None])
            accepted: list[CloudEvent] = []
            for item in items:
                event = item.event
                if event is not None and event.id not in claimed:
                    continue  # applied before, or twice in this batch
                if event is not None:
                    claimed.discard(event.id)
                if item.problem is None and event is not None:
                    try:
                        load_catalogue().validate(event)
                    except InvalidEventData as exc:
                        item.problem = f"InvalidEventData: {exc}"
                if item.problem is not None:
                    if event is not None:
                        metrics.dead_lettered.labels(event.type, "-").inc()
                    await self._dead_letter(session, item)
                    continue
                assert event is not None
                accepted.append(event)
            if not accepted:
                return
            types = {event.type for event in accepted}
            datasets = {
                d.name: d
                for d in await session.scalars(select(Dataset).where(Dataset.name.in_(types)))
            }
            grants = await service.active_grants(session, types)
            plan = service.Plan.of(exchange)
            # A regional node queues its national events for central with their acceptance.
            link = exchange.link
            forwarding = link is not None and not link.is_central
            for event_type, read_model in READ_MODELS.items():
                if event_type in types:
                    await read_model(session, [e for e in accepted if e.type == event_type])
            # Every pseudonym the batch needs, asked of identity at once rather than one by one.
            await service.prefetch_pseudonyms(
                exchange.extra["pseudonyms"],
                [(datasets[e.type], e.data, grants.get(e.type, [])) for e in accepted],
            )
            for event in accepted:
                value = service.envelope(
                    event_id=event.id,
                    type=event.type,
                    source=event.source,
                    subject=event.subject,
                    time=event.time,
                    data=event.data,
                    traceparent=event.traceparent,
                )
                service.keep(plan, exchange, value)
                if forwarding and datasets[event.type].scope == "national":
                    plan.forwards.append(queued(exchange, value))
                await service.plan_deliveries(
                    plan,
                    exchange,
                    dataset=datasets[event.type],
                    event=value,
                    grants=grants.get(event.type, []),
                    pseudonyms=exchange.extra["pseudonyms"],
                    prefetched=True,
                )
            await service.write(session, plan)
            pulled = [d for d in plan.deliveries if d["mode"] == "pull"]
        now = datetime.now(UTC)
        times = {event.id: event.time for event in accepted}
        for delivery in pulled:
            labels = (delivery["dataset"], delivery["department"])
            metrics.delivered.labels(*labels, "pull").inc()
            latency = (now - times[delivery["event_id"]]).total_seconds()
            metrics.latency.labels(*labels).observe(max(latency, 0.0))

    async def _claim(self, session: AsyncSession, events: Sequence[CloudEvent]) -> set[str]:
        """Record the events' ids in the inbox; return those that were new."""
        unique = {event.id: event for event in events}
        if not unique:
            return set()
        rows = await insert_columns(
            session,
            inbox,
            {
                "consumer": [CONSUMER] * len(unique),
                "event_id": list(unique),
                "event_type": [e.type for e in unique.values()],
            },
            returning=("event_id",),
            skip_conflicts=True,
        )
        return {event_id for (event_id,) in rows}

    async def _dead_letter(self, session: AsyncSession, item: _Item) -> None:
        record, event = item.record, item.event
        headers = {name: value.decode(errors="replace") for name, value in record.headers}
        await session.execute(
            pg_insert(dead_letters)
            .values(
                consumer=CONSUMER,
                event_id=event.id if event else headers.get("ce_id"),
                event_type=event.type if event else headers.get("ce_type"),
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                headers=headers,
                payload=record.value,
                reason=str(item.problem)[:2000],
            )
            .on_conflict_do_nothing()
        )
        logger.warning(
            "dead-lettered %s/%d@%d: %s",
            record.topic,
            record.partition,
            record.offset,
            item.problem,
        )
