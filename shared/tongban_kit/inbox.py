"""Idempotent consumers: each event's effect commits together with a record of its id.

A redelivered event finds its id in the inbox and changes nothing. An event that cannot be
applied (not a CloudEvent, or its handler raised) is written to the dead-letter table with the
reason, and the consumer moves on: one bad event never stops a partition. Database or broker
outages are not the event's fault: the consumer backs off and reads the event again. The Kafka
client is kept alive by ``tongban_kit.consuming.ConsumerLoop`` (restarted on errors and stalls).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tongban_kit.consuming import ConsumerLoop
from tongban_kit.errors import database_unavailable
from tongban_kit.events.envelope import CloudEvent, InvalidEvent
from tongban_kit.observability.context import TraceContext, parse_traceparent, trace_var
from tongban_kit.observability.metrics import ServiceMetrics
from tongban_kit.outbox.tables import dead_letters, inbox
from tongban_kit.settings import NodeSettings

__all__ = ["EventConsumer", "EventHandler", "Subscription"]

logger = logging.getLogger("tongban.inbox")

EventHandler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    """What one consumer of a service listens to: logical topics and a handler per type."""

    name: str
    topics: tuple[str, ...]
    handlers: Mapping[str, EventHandler]


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError):
        return True
    return database_unavailable(exc)


class EventConsumer:
    """Runs one subscription for one service: ``run`` loops until ``stop``."""

    def __init__(
        self,
        *,
        service: str,
        subscription: Subscription,
        sessionmaker: async_sessionmaker[AsyncSession],
        node: NodeSettings,
        metrics: ServiceMetrics,
    ) -> None:
        self.subscription = subscription
        self.consumer_name = f"{service}.{subscription.name}"
        self.topics = [node.topic(logical) for logical in subscription.topics]
        self.group_id = node.topic(self.consumer_name)
        self.sessionmaker = sessionmaker
        self.node = node
        self.metrics = metrics
        self.loop = ConsumerLoop(
            name=self.consumer_name,
            node=node,
            topics=self.topics,
            group_id=self.group_id,
            handle=self._handle_batch,
            metrics=metrics,
        )

    @property
    def connected(self) -> bool:
        return self.loop.connected

    def stop(self) -> None:
        """Ask ``run`` to return."""
        self.loop.stop()

    async def run(self) -> None:
        await self.loop.run()

    async def _handle_batch(self, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        for record in records:
            await self.handle(record)

    async def handle(self, record: ConsumerRecord[Any, Any]) -> str:
        """Apply one record; return the outcome (applied, duplicate, ignored, dead_letter)."""
        outcome = await self._handle(record)
        self.metrics.events_consumed.labels(self.consumer_name, outcome).inc()
        return outcome

    async def _handle(self, record: ConsumerRecord[Any, Any]) -> str:
        try:
            event = CloudEvent.from_kafka(record.key, record.value, record.headers)
        except InvalidEvent as exc:
            await self._dead_letter(record, None, f"invalid event: {exc}")
            return "dead_letter"
        handler = self.subscription.handlers.get(event.type)
        if handler is None:
            return "ignored"  # a type this consumer does not care about
        incoming = parse_traceparent(event.traceparent)
        token = trace_var.set(incoming.child() if incoming else TraceContext.start())
        try:
            async with self.sessionmaker() as session, session.begin():
                claimed = await session.execute(
                    pg_insert(inbox)
                    .values(consumer=self.consumer_name, event_id=event.id, event_type=event.type)
                    .on_conflict_do_nothing()
                    .returning(inbox.c.event_id)
                )
                if claimed.first() is None:
                    return "duplicate"
                await handler(session, event)
            return "applied"
        except Exception as exc:
            if _is_transient(exc):
                raise
            logger.exception("event %s (%s) could not be applied", event.id, event.type)
            await self._dead_letter(record, event, f"{type(exc).__name__}: {exc}")
            return "dead_letter"
        finally:
            trace_var.reset(token)

    async def _dead_letter(
        self, record: ConsumerRecord[Any, Any], event: CloudEvent | None, reason: str
    ) -> None:
        headers = {name: value.decode(errors="replace") for name, value in record.headers}
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                pg_insert(dead_letters)
                .values(
                    consumer=self.consumer_name,
                    event_id=event.id if event else headers.get("ce_id"),
                    event_type=event.type if event else headers.get("ce_type"),
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=record.key,
                    headers=headers,
                    payload=record.value,
                    reason=reason[:2000],
                )
                .on_conflict_do_nothing()
            )
            if event is not None:
                # Recorded as handled: a redelivery must not dead-letter it a second time.
                await session.execute(
                    pg_insert(inbox)
                    .values(consumer=self.consumer_name, event_id=event.id, event_type=event.type)
                    .on_conflict_do_nothing()
                )
        logger.warning(
            "dead-lettered %s/%d@%d: %s", record.topic, record.partition, record.offset, reason
        )
