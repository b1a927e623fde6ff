"""The dispatcher: makes due Kafka and webhook deliveries, retries with back-off, gives up.

Deliveries are claimed with ``FOR UPDATE SKIP LOCKED`` so several replicas share the work.
A delivery of a revoked grant is cancelled, not made. A webhook that fails waits
``initial * 2^attempts`` (capped) and is dead-lettered once ``webhook_retry_hours`` have passed
since the delivery was made; a department asks for a redelivery over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tongban_exchange.catalogue.asyncapi import delivery_topic
from tongban_exchange.delivery import webhooks
from tongban_exchange.models import Delivery, Grant
from tongban_exchange.routing.service import delivery_context
from tongban_exchange.runtime import Exchange
from tongban_kit.events import CloudEvent
from tongban_kit.kafka import TopicAdmin, build_producer

logger = logging.getLogger("tongban.exchange.dispatcher")

BATCH = 500
WEBHOOK_CONCURRENCY = 16
LAG_EVERY_S = 2.0


def kafka_event(value: dict[str, Any]) -> CloudEvent:
    return CloudEvent(
        type=value["type"],
        source=value["source"],
        subject=value["subject"],
        data=value["data"],
        id=value["id"],
        time=datetime.fromisoformat(value["time"]),
        traceparent=value.get("traceparent"),
    )


class Dispatcher:
    def __init__(self, exchange: Exchange, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.exchange = exchange
        self.settings = exchange.settings
        self.sessionmaker = sessionmaker
        self.producer: AIOKafkaProducer | None = None
        self.admin: TopicAdmin | None = None
        self.topics_ready: set[str] = set()
        self.http = httpx.AsyncClient(
            timeout=exchange.settings.webhook_timeout_s,
            limits=httpx.Limits(max_connections=WEBHOOK_CONCURRENCY),
        )
        self._lag_at = 0.0

    async def run(self) -> None:
        """Kafka and webhooks in loops of their own: a slow webhook never holds a topic back."""
        try:
            await asyncio.gather(self._loop("kafka"), self._loop("webhook"))
        finally:
            await self._reset_producer()
            await self.http.aclose()

    async def _loop(self, mode: str) -> None:
        backoff = 0.1
        while True:
            try:
                made = await self.dispatch_once(mode)
                backoff = 0.1
                if mode == "kafka":
                    await self._maybe_measure_lag()
                if made < BATCH:
                    await asyncio.sleep(self.settings.dispatch_interval_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("%s dispatch interrupted, retrying in %.1fs: %s", mode, backoff, exc)
                if mode == "kafka":
                    await self._reset_producer()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def dispatch_once(self, mode: str) -> int:
        """Make the due deliveries of one mode (up to a batch); return how many were due."""
        async with self.sessionmaker() as session, session.begin():
            rows = (
                await session.execute(
                    select(Delivery, Grant.status, Grant.webhook_url)
                    .join(Grant, Grant.id == Delivery.grant_id)
                    .where(
                        Delivery.status == "pending",
                        Delivery.mode == mode,
                        Delivery.next_attempt_at <= func.now(),
                    )
                    .order_by(Delivery.id)
                    .limit(BATCH)
                    .with_for_update(of=Delivery, skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            kafka: list[Delivery] = []
            hooks: list[tuple[Delivery, str]] = []
            for delivery, grant_status, url in rows:
                if grant_status != "granted":
                    delivery.status = "cancelled"
                elif delivery.mode == "kafka":
                    kafka.append(delivery)
                elif url:
                    hooks.append((delivery, url))
            await self._send_kafka(kafka)
            await self._send_webhooks(session, hooks)
            return len(rows)

    def _open(self, delivery: Delivery) -> dict[str, Any]:
        return self.exchange.unseal(
            delivery.sealed, context=delivery_context(delivery.grant_id, delivery.event_id)
        )

    def _delivered(self, delivery: Delivery, event_time: str) -> None:
        now = datetime.now(UTC)
        delivery.status = "delivered"
        delivery.delivered_at = now
        delivery.attempts += 1
        metrics = self.exchange.metrics
        metrics.delivered.labels(delivery.dataset, delivery.department, delivery.mode).inc()
        latency = (now - datetime.fromisoformat(event_time)).total_seconds()
        metrics.latency.labels(delivery.dataset, delivery.department).observe(max(latency, 0.0))

    async def _send_kafka(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        producer = await self._ensure_producer()
        node = self.settings.node
        topics = {node.topic(delivery_topic(d.department)) for d in deliveries}
        if topics - self.topics_ready:
            assert self.admin is not None
            await self.admin.ensure(topics - self.topics_ready)
            self.topics_ready |= topics
        futures = []
        values = []
        for delivery in deliveries:
            value = self._open(delivery)
            event = kafka_event(value)
            record = event.to_kafka()
            headers = [*record.headers, ("ce_tongbangrant", value["tongbangrant"].encode())]
            futures.append(
                await producer.send(
                    node.topic(delivery_topic(delivery.department)),
                    key=record.key,
                    value=record.value,
                    headers=headers,
                )
            )
            values.append(value)
        await asyncio.gather(*futures)
        for delivery, value in zip(deliveries, values, strict=True):
            self._delivered(delivery, value["time"])

    async def _send_webhooks(
        self, session: AsyncSession, hooks: Sequence[tuple[Delivery, str]]
    ) -> None:
        if not hooks:
            return
        secrets: dict[str, str] = {}
        for delivery, _ in hooks:
            if delivery.department not in secrets:
                secrets[delivery.department] = await webhooks.secret_of(
                    session, department=delivery.department, cipher=self.exchange.cipher
                )
        semaphore = asyncio.Semaphore(WEBHOOK_CONCURRENCY)

        async def post(delivery: Delivery, url: str) -> None:
            value = self._open(delivery)
            body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
            headers = webhooks.headers(
                secrets[delivery.department], msg_id=delivery.event_id, body=body
            )
            async with semaphore:
                try:
                    response = await self.http.post(url, content=body, headers=headers)
                    error = None if response.is_success else f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"[:500]
            if error is None:
                self._delivered(delivery, value["time"])
            else:
                self._failed(delivery, error)

        await asyncio.gather(*(post(d, url) for d, url in hooks))

    def _failed(self, delivery: Delivery, error: str) -> None:
        now = datetime.now(UTC)
        delivery.attempts += 1
        delivery.last_error = error
        metrics = self.exchange.metrics
        metrics.failed.labels(delivery.dataset, delivery.department).inc()
        give_up = delivery.created_at + timedelta(hours=self.settings.webhook_retry_hours)
        wait = min(
            self.settings.webhook_backoff_initial_s * 2 ** (delivery.attempts - 1),
            self.settings.webhook_backoff_max_s,
        )
        if now + timedelta(seconds=wait) > give_up:
            delivery.status = "dead"
            metrics.dead_lettered.labels(delivery.dataset, delivery.department).inc()
            logger.warning("delivery %d to %s dead-lettered", delivery.id, delivery.department)
        else:
            delivery.next_attempt_at = now + timedelta(seconds=wait)

    async def _maybe_measure_lag(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self._lag_at < LAG_EVERY_S:
            return
        self._lag_at = loop.time()
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Delivery.dataset, Delivery.department, func.count())
                    .where(Delivery.status == "pending")
                    .group_by(Delivery.dataset, Delivery.department)
                )
            ).all()
        self.exchange.metrics.lag.clear()
        for dataset, department, count in rows:
            self.exchange.metrics.lag.labels(dataset, department).set(count)

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self.producer is None:
            node = self.settings.node
            self.admin = TopicAdmin(node)
            await self.admin.start()
            producer = build_producer(node, client_id=f"{node.node_code}-exchange-dispatcher")
            await asyncio.wait_for(producer.start(), 10.0)
            self.producer = producer
        return self.producer

    async def _reset_producer(self) -> None:
        producer, admin = self.producer, self.admin
        self.producer, self.admin = None, None
        self.topics_ready.clear()
        with contextlib.suppress(Exception):
            if producer is not None:
                await asyncio.wait_for(producer.stop(), 5.0)
        with contextlib.suppress(Exception):
            if admin is not None:
                await admin.close()


async def redeliver(session: AsyncSession, *, delivery: Delivery) -> None:
    """Make a delivery again, from its first attempt (a department's request)."""
    await session.execute(
        update(Delivery)
        .where(Delivery.id == delivery.id)
        .values(status="pending", attempts=0, next_attempt_at=func.now(), created_at=func.now())
    )
