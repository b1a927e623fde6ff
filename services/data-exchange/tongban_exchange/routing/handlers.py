"""The routing consumer: every domain topic, every event type, validated at the border."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_exchange.catalogue import service as catalogue
from tongban_exchange.records.handlers import READ_MODELS
from tongban_exchange.routing import service
from tongban_exchange.routing.pseudonyms import IdentityPseudonyms
from tongban_exchange.runtime import Exchange
from tongban_kit.events import CloudEvent, InvalidEventData, load_catalogue
from tongban_kit.inbox import EventHandler, Subscription


class _EveryType(Mapping[str, EventHandler]):
    """One handler for any type: unknown types reach it too, and are dead-lettered there."""

    def __init__(self, handler: EventHandler) -> None:
        self.handler = handler

    def __getitem__(self, event_type: str) -> EventHandler:
        return self.handler

    def __iter__(self) -> Iterator[str]:
        return iter(load_catalogue().types)

    def __len__(self) -> int:
        return len(load_catalogue().types)


def routing_subscription(exchange: Exchange) -> Subscription:
    """Consume every topic the catalogue's event types travel on."""
    pseudonyms = IdentityPseudonyms(exchange)
    exchange.extra["pseudonyms"] = pseudonyms

    async def route(session: AsyncSession, event: CloudEvent) -> None:
        try:
            load_catalogue().validate(event)
        except InvalidEventData:
            exchange.metrics.dead_lettered.labels(event.type, "-").inc()
            raise
        read_model = READ_MODELS.get(event.type)
        if read_model is not None:
            await read_model(session, event)
        dataset = await catalogue.get(session, event.type)
        value = service.envelope(
            event_id=event.id,
            type=event.type,
            source=event.source,
            subject=event.subject,
            time=event.time,
            data=event.data,
            traceparent=event.traceparent,
        )
        await service.keep(session, exchange, value)
        grants = await service.active_grants(session, event.type)
        deliveries = await service.deliver(
            session,
            exchange,
            dataset=dataset,
            event=value,
            grants=grants,
            pseudonyms=exchange.extra["pseudonyms"],
        )
        now = datetime.now(UTC)
        for delivery in deliveries:
            if delivery.mode == "pull":
                exchange.metrics.delivered.labels(
                    delivery.dataset, delivery.department, "pull"
                ).inc()
                exchange.metrics.latency.labels(delivery.dataset, delivery.department).observe(
                    max((now - event.time).total_seconds(), 0.0)
                )

    topics = tuple(sorted({info.topic for info in load_catalogue().types.values()}))
    return Subscription(name="routing", topics=topics, handlers=_EveryType(route))
