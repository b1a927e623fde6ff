"""The relay: publish outbox rows to Kafka, in order, at least once.

It claims a batch of unpublished rows with ``FOR UPDATE SKIP LOCKED`` (so several relays may
run side by side), sends them, waits for the broker's acknowledgements, and marks the batch
published in the same transaction. A failed send rolls the claim back: the rows stay unpublished
and the relay backs off and tries again, so a broker outage delays events and loses none. It
sleeps on PostgreSQL ``LISTEN`` and also polls, in case a notification is missed.

A broker can also lose what it had acknowledged (one restarted empty, a topic deleted): events
already marked published are then gone before every consumer read them. So the relay remembers,
per partition, the last event it published there and the offset the broker gave it, and every
few seconds reads that offset back: when the topic is missing, or the offset holds nothing or
another event, the broker lost events, and the relay marks that topic's retained rows
unpublished and sends them again, in ``seq`` order. (End offsets cannot tell: tansu, the
embedded broker, reports a partition's end as one past the first record of its last batch.) A relay
that has not published anything yet (just started) checks only that every topic it has
retained rows of still exists. Consumers apply each event once (inbox), so the ones that had
read a republished event change nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import BigInteger, any_, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine

from tongban_kit.db.engine import libpq_dsn
from tongban_kit.kafka import TopicAdmin, build_producer
from tongban_kit.observability.metrics import ServiceMetrics
from tongban_kit.outbox.tables import NOTIFY_CHANNEL, outbox
from tongban_kit.settings import NodeSettings

__all__ = ["OutboxRelay", "replay_from"]

logger = logging.getLogger("tongban.outbox")

_CLAIM = (
    select(outbox.c.seq, outbox.c.topic, outbox.c.key, outbox.c.headers, outbox.c.payload)
    .where(outbox.c.published_at.is_(None))
    .order_by(outbox.c.seq)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_MARK = (
    update(outbox)
    .where(outbox.c.seq == any_(bindparam("seqs", type_=ARRAY(BigInteger))))
    .values(published_at=func.now())
)
_PUBLISHED_TOPICS = select(outbox.c.topic).where(outbox.c.published_at.is_not(None)).distinct()
_BACKLOG = select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
_PURGE = text(
    "DELETE FROM tongban_outbox WHERE published_at < now() - make_interval(secs => :seconds)"
)


class OutboxRelay:
    """Publishes one service's outbox. ``run`` loops until stopped (``stop``) or cancelled."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        node: NodeSettings,
        metrics: ServiceMetrics,
        client_id: str,
        purge_every_s: float = 300.0,
        publish_timeout_s: float = 10.0,
        broker_check_every_s: float = 3.0,
    ) -> None:
        self.publish_timeout_s = publish_timeout_s
        self.broker_check_every_s = broker_check_every_s
        self._next_broker_check = 0.0
        self.engine = engine
        self.node = node
        self.metrics = metrics
        self.client_id = client_id
        self.purge_every_s = purge_every_s
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._admin: TopicAdmin | None = None
        self._reader: AIOKafkaConsumer | None = None  # no group: reads back what we published
        # (physical topic, partition) -> (offset, event id) of the last event published there.
        self._last: dict[TopicPartition, tuple[int, str]] = {}
        self._topics_ready: set[str] = set()
        self._listener: Any = None
        self.connected = False

    def stop(self) -> None:
        """Ask ``run`` to return, at once if it sleeps. Cancelling alone is not enough: on
        Python 3.11 ``asyncio.wait_for`` swallows a cancellation that lands as the call it
        awaits completes (fixed in 3.12), and the relay would go on polling."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        backoff = 0.1
        last_purge = 0.0
        try:
            while not self._stopping.is_set():
                try:
                    await self._ensure_listener()
                    producer = await self._ensure_producer()
                    if time.monotonic() >= self._next_broker_check:
                        await self.republish_lost()
                        self._next_broker_check = time.monotonic() + self.broker_check_every_s
                    published = await asyncio.wait_for(
                        self.publish_batch(producer), self.publish_timeout_s * 2
                    )
                    backoff = 0.1
                    if time.monotonic() - last_purge > self.purge_every_s:
                        last_purge = time.monotonic()
                        await self.purge_published()
                    if published >= self.node.outbox_batch_size:
                        continue  # a backlog: drain without waiting
                    if published == 0:
                        await self._update_backlog_gauge()
                        await self._sleep(self.node.outbox_poll_interval_s)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # broker or database down: back off, keep the rows
                    self.metrics.outbox_publish_errors.inc()
                    logger.warning(
                        "outbox relay cannot publish, retrying in %.1fs: %s", backoff, exc
                    )
                    await self._reset_producer()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            await self._reset_producer()
            await self._close_listener()

    async def publish_batch(self, producer: AIOKafkaProducer) -> int:
        """Claim, send and mark one batch; return how many rows were published."""
        async with self.engine.begin() as conn:
            rows = (await conn.execute(_CLAIM, {"limit": self.node.outbox_batch_size})).all()
            if not rows:
                return 0
            topics = {self.node.topic(row.topic) for row in rows}
            assert self._admin is not None
            if topics - self._topics_ready:
                await self._admin.ensure(topics - self._topics_ready)
                self._topics_ready |= topics
            futures = [
                await producer.send(
                    self.node.topic(row.topic),
                    value=row.payload,
                    key=row.key,
                    headers=[(name, value.encode()) for name, value in row.headers.items()],
                )
                for row in rows
            ]
            # A client stuck on a broker that went away must not hold the claim forever: give
            # up on the batch (its rows stay unpublished) and start over with a new producer.
            acked = await asyncio.wait_for(asyncio.gather(*futures), self.publish_timeout_s)
            # A broker that restarted empty acknowledges writes to topics it no longer has and
            # drops them (the embedded broker does): only a batch whose topics still exist after
            # the acknowledgements counts as published.
            vanished = await self._admin.missing(topics)
            if vanished:
                self._topics_ready -= vanished
                raise RuntimeError(f"topics vanished from the broker: {', '.join(vanished)}")
            await conn.execute(_MARK, {"seqs": [row.seq for row in rows]})
        for row, meta in zip(rows, acked, strict=True):
            self._last[TopicPartition(meta.topic, meta.partition)] = (
                meta.offset,
                row.headers["ce_id"],
            )
        self.metrics.outbox_published.inc(len(rows))
        return len(rows)

    async def republish_lost(self) -> int:
        """Queue again the retained rows of every topic the broker lost events of; return how
        many rows were queued (see the module docstring)."""
        lost = await self._lost_topics()
        if not lost:
            return 0
        logical = {self.node.topic(topic): topic for topic in await self._published_topics()}
        names = sorted(logical[t] for t in lost if t in logical)
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(outbox)
                .where(outbox.c.topic.in_(names), outbox.c.published_at.is_not(None))
                .values(published_at=None)
            )
        queued = int(getattr(result, "rowcount", 0) or 0)
        self._topics_ready -= lost
        self._last = {tp: seen for tp, seen in self._last.items() if tp.topic not in lost}
        self.metrics.outbox_republished.inc(queued)
        logger.warning(
            "the broker lost published events of %s: republishing %d retained row(s)",
            ", ".join(sorted(lost)),
            queued,
        )
        return queued

    async def _published_topics(self) -> list[str]:
        async with self.engine.connect() as conn:
            return list((await conn.scalars(_PUBLISHED_TOPICS)).all())

    async def _lost_topics(self) -> set[str]:
        """Physical topics the broker lost events of."""
        assert self._admin is not None
        if not self._last:  # nothing published on this connection yet: do the topics exist?
            topics = {self.node.topic(topic) for topic in await self._published_topics()}
            return await self._admin.missing(topics) if topics else set()
        missing = await self._admin.missing({tp.topic for tp in self._last})
        pending = {tp: seen for tp, seen in self._last.items() if tp.topic not in missing}
        found = await self._read_back(pending) if pending else {}
        return missing | {tp.topic for tp, seen in pending.items() if found.get(tp) != seen[1]}

    async def _read_back(
        self, wanted: dict[TopicPartition, tuple[int, str]], timeout: float = 5.0
    ) -> dict[TopicPartition, str | None]:
        """The event id at each wanted offset (``None``: another offset came first); a
        partition that returns nothing within ``timeout`` is left out."""
        reader = self._reader
        assert reader is not None
        reader.assign(list(wanted))
        for tp, (offset, _) in wanted.items():
            reader.seek(tp, offset)
        found: dict[TopicPartition, str | None] = {}
        deadline = time.monotonic() + timeout
        while len(found) < len(wanted) and time.monotonic() < deadline:
            pending = [tp for tp in wanted if tp not in found]
            batches = await reader.getmany(*pending, timeout_ms=300)
            for tp, records in batches.items():
                for record in records:
                    if tp not in found and record.offset >= wanted[tp][0]:
                        headers = dict(record.headers)
                        exact = record.offset == wanted[tp][0] and "ce_id" in headers
                        found[tp] = headers["ce_id"].decode() if exact else None
        return found

    async def purge_published(self) -> int:
        """Delete rows published longer ago than the retention window."""
        seconds = self.node.outbox_retention_hours * 3600
        async with self.engine.begin() as conn:
            result = await conn.execute(_PURGE, {"seconds": seconds})
        purged = int(getattr(result, "rowcount", 0) or 0)
        if purged:
            logger.info("purged %d published outbox rows", purged)
        return purged

    async def _update_backlog_gauge(self) -> None:
        async with self.engine.connect() as conn:
            self.metrics.outbox_backlog.set(await conn.scalar(_BACKLOG) or 0)

    async def _sleep(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = build_producer(self.node, client_id=self.client_id)
            admin = TopicAdmin(self.node)
            reader = AIOKafkaConsumer(
                bootstrap_servers=self.node.kafka_bootstrap_servers,
                client_id=f"{self.client_id}-check",
                enable_auto_commit=False,
                auto_offset_reset="latest",  # an offset the broker no longer has: wait, find none
                request_timeout_ms=10_000,
            )
            try:
                await producer.start()
                await admin.start()
                await reader.start()
            except BaseException:
                await producer.stop()
                await admin.close()
                await reader.stop()
                raise
            self._producer, self._admin, self._reader = producer, admin, reader
            self._next_broker_check = 0.0  # a broker we reconnect to may have come back empty
            self.connected = True
            logger.info("outbox relay connected to %s", self.node.kafka_bootstrap_servers)
        return self._producer

    async def _reset_producer(self) -> None:
        producer, self._producer = self._producer, None
        admin, self._admin = self._admin, None
        reader, self._reader = self._reader, None
        if admin is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(admin.close(), 2.0)
        if reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reader.stop(), 2.0)
        self.connected = False
        # A broker that comes back may come back empty: check the topics again.
        self._topics_ready.clear()
        if producer is not None:
            # stop() flushes pending sends; against a dead broker that could wait forever.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 2.0)

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        dsn = libpq_dsn(self.engine.url.render_as_string(hide_password=False))
        self._listener = await asyncpg.connect(dsn)
        await self._listener.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.close()


async def replay_from(engine: AsyncEngine, seq: int) -> int:
    """Mark retained rows from ``seq`` on as unpublished, so the relay sends them again.

    Consumers are idempotent (inbox), so a replay repairs a consumer that lost data and does
    nothing to the others. Returns the number of rows queued again.
    """
    async with engine.begin() as conn:
        result = await conn.execute(
            update(outbox)
            .where(outbox.c.seq >= seq, outbox.c.published_at.is_not(None))
            .values(published_at=None)
        )
        await conn.execute(select(func.pg_notify(NOTIFY_CHANNEL, "")))
    return int(getattr(result, "rowcount", 0) or 0)
