"""Sending deliveries: to a department's Kafka topic, or POSTed to its webhook.

Both the fresh-delivery path and the retry poller of ``dispatcher`` send through these, so a
delivery goes out the same way on its first attempt and its tenth.

``KafkaSender`` keeps one producer and makes each department's topic once. ``WebhookSender``
signs per Standard Webhooks (``webhooks``) and posts plain-HTTP URLs over keep-alive
connections of the kit's lean client (``tongban_kit.lean_http``; httpx's per-request overhead
was most of a webhook's CPU in bench/exchange_routing.py) and HTTPS URLs through httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tongban_exchange.catalogue.asyncapi import delivery_topic
from tongban_exchange.delivery import webhooks
from tongban_exchange.settings import ExchangeSettings
from tongban_kit.crypto import FieldCipher
from tongban_kit.events.compact import compact_bytes
from tongban_kit.events.envelope import binary_headers
from tongban_kit.kafka import TopicAdmin, build_producer
from tongban_kit.lean_http import LeanDisconnected, LeanError, LeanPool

#: Connections (so requests in flight) per webhook host.
WEBHOOK_CONCURRENCY = 64


class KafkaSender:
    """One producer for every department topic, made on first use and after a failure."""

    def __init__(self, settings: ExchangeSettings) -> None:
        self.node = settings.node
        self.producer: AIOKafkaProducer | None = None
        self.admin: TopicAdmin | None = None
        self.topics_ready: set[str] = set()

    async def send(self, deliveries: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Send ``(department, projected event)`` pairs; returns once the broker has all."""
        if not deliveries:
            return
        producer = await self._ensure_producer()
        topics = {self.node.topic(delivery_topic(department)) for department, _ in deliveries}
        if topics - self.topics_ready:
            assert self.admin is not None
            await self.admin.ensure(topics - self.topics_ready)
            self.topics_ready |= topics
        futures = []
        for department, value in deliveries:
            # The projected event, binary mode: the same headers and data text as any event.
            headers = binary_headers(value)
            headers.append(("ce_tongbangrant", value["tongbangrant"].encode()))
            futures.append(
                await producer.send(
                    self.node.topic(delivery_topic(department)),
                    key=value["subject"].encode(),
                    value=compact_bytes(value["data"]),
                    headers=headers,
                )
            )
        await asyncio.gather(*futures)

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self.producer is None:
            self.admin = TopicAdmin(self.node)
            await self.admin.start()
            producer = build_producer(
                self.node, client_id=f"{self.node.node_code}-exchange-dispatcher"
            )
            await asyncio.wait_for(producer.start(), 10.0)
            self.producer = producer
        return self.producer

    async def reset(self) -> None:
        """Drop the producer (after a failure): the next send starts a new one."""
        producer, admin = self.producer, self.admin
        self.producer, self.admin = None, None
        self.topics_ready.clear()
        with contextlib.suppress(Exception):
            if producer is not None:
                await asyncio.wait_for(producer.stop(), 5.0)
        with contextlib.suppress(Exception):
            if admin is not None:
                await admin.close()


class WebhookSender:
    """Signed POSTs of projected events; each returns None on a 2xx, else what went wrong."""

    def __init__(
        self,
        settings: ExchangeSettings,
        cipher: FieldCipher,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        self.timeout_s = settings.webhook_timeout_s
        self.cipher = cipher
        self.sessionmaker = sessionmaker
        # A department's secret is made once and never changes: read it once.
        self._secrets: dict[str, str] = {}
        self._pools: dict[tuple[str, int], LeanPool] = {}
        self._https = httpx.AsyncClient(
            timeout=self.timeout_s, limits=httpx.Limits(max_connections=WEBHOOK_CONCURRENCY)
        )

    async def post(self, department: str, url: str, event_id: str, body: bytes) -> str | None:
        """POST ``body`` (the projected event's JSON) signed with ``webhook-id: event_id``."""
        headers = webhooks.headers(await self._secret(department), msg_id=event_id, body=body)
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            return await self._post_httpx(url, body, headers)
        pool = self._pool(parts.hostname, parts.port or 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        fields = list(headers.items())
        for attempt in (1, 2):
            try:
                response = await pool.request(
                    "POST", target, fields, timeout_s=self.timeout_s, body=body
                )
            except LeanDisconnected as exc:
                # An idle connection the receiver had closed: safe to send again once (the
                # receiver deduplicates on webhook-id in any case).
                if exc.reused and attempt == 1:
                    continue
                return f"{type(exc).__name__}: {exc}"[:500]
            except LeanError as exc:
                return f"{type(exc).__name__}: {exc}"[:500]
            try:
                await response.read()
            except LeanError as exc:
                response.close()
                return f"{type(exc).__name__}: {exc}"[:500]
            response.release()
            return None if 200 <= response.status < 300 else f"HTTP {response.status}"
        return "the receiver kept closing the connection"

    async def _post_httpx(self, url: str, body: bytes, headers: dict[str, str]) -> str | None:
        try:
            response = await self._https.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:500]
        return None if response.is_success else f"HTTP {response.status_code}"

    def _pool(self, host: str, port: int) -> LeanPool:
        pool = self._pools.get((host, port))
        if pool is None:
            pool = LeanPool(host, port, connect_timeout_s=self.timeout_s, limit=WEBHOOK_CONCURRENCY)
            self._pools[(host, port)] = pool
        return pool

    async def _secret(self, department: str) -> str:
        secret = self._secrets.get(department)
        if secret is None:
            async with self.sessionmaker() as session:
                secret = await webhooks.secret_of(
                    session, department=department, cipher=self.cipher
                )
            self._secrets[department] = secret
        return secret

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        await self._https.aclose()
