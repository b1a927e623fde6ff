"""One Kafka consumer group member kept alive: restarted when it fails and when it stalls.

``ConsumerLoop.run`` creates the topics, starts an ``AIOKafkaConsumer``, hands each non-empty
batch to a handler and commits after it. Any error (broker gone, database down, a commit that
never completes) stops the client and starts a new one after a backoff; the offsets committed
so far say where to resume, and the inbox makes re-reading harmless.

A client can also stop making progress without raising anything: after a broker restart or a
group rebalance aiokafka may sit with no partitions assigned, or with partitions assigned but a
fetch that never returns, while events wait. So the loop watches itself: once it has seen
nothing for ``stall_after_s`` it asks the broker how far each assigned partition reaches; events
waiting that are not fetched, or no partitions assigned at all, make it restart the client.
Every restart is logged with its reason and counted in ``tongban_consumer_restarts``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from tongban_kit.kafka import build_consumer, ensure_topics
from tongban_kit.observability.metrics import ServiceMetrics
from tongban_kit.settings import NodeSettings

__all__ = ["BatchHandler", "ConsumerLoop", "Stalled"]

logger = logging.getLogger("tongban.consumer")

BatchHandler = Callable[[Sequence[ConsumerRecord[Any, Any]]], Awaitable[None]]

# A group member with nothing assigned may be one replica too many (more members than
# partitions): its restarts back off up to this long.
_MAX_UNASSIGNED_S = 300.0


class Stalled(Exception):
    """The consumer is connected but not consuming: restart it."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class ConsumerLoop:
    """Runs one group member for ``handle`` until ``stop``; see the module docstring."""

    def __init__(
        self,
        *,
        name: str,
        node: NodeSettings,
        topics: Sequence[str],
        group_id: str,
        handle: BatchHandler,
        metrics: ServiceMetrics,
        max_records: int = 500,
        stall_after_s: float = 15.0,
    ) -> None:
        self.name = name
        self.node = node
        self.topics = list(topics)
        self.group_id = group_id
        self.handle = handle
        self.metrics = metrics
        self.max_records = max_records
        self.stall_after_s = stall_after_s
        self.connected = False
        self._stopping = asyncio.Event()
        self._unassigned_after_s = stall_after_s

    def stop(self) -> None:
        """Ask ``run`` to return. Cancelling alone is not enough: aiokafka can swallow a
        cancellation that lands while a consumer joins its group."""
        self._stopping.set()

    async def run(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            consumer: AIOKafkaConsumer | None = None
            try:
                await ensure_topics(self.node, self.topics)
                consumer = build_consumer(self.node, *self.topics, group_id=self.group_id)
                await asyncio.wait_for(consumer.start(), 30.0)
                self.connected = True
                logger.info("consumer %s started", self.name)
                backoff = 0.1
                await self._consume(consumer)
            except asyncio.CancelledError:
                raise
            except Stalled as stalled:
                self._restarted(stalled.reason)
                logger.warning("consumer %s stalled, restarting it: %s", self.name, stalled)
            except Exception as exc:
                self._restarted("error")
                logger.warning(
                    "consumer %s interrupted, restarting in %.1fs: %s: %s",
                    self.name,
                    backoff,
                    type(exc).__name__,
                    exc,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self.connected = False
                if consumer is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(consumer.stop(), 5.0)

    def _restarted(self, reason: str) -> None:
        self.metrics.consumer_restarts.labels(self.name, reason).inc()

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        idle_since = time.monotonic()
        unassigned_since: float | None = None
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=self.max_records)
            records = [record for partition in batches.values() for record in partition]
            now = time.monotonic()
            if records:
                await self.handle(records)
                # A broker that restarted empty makes commits retry forever; give up and
                # rejoin (re-creating the topics), re-reading from the last commit.
                await asyncio.wait_for(consumer.commit(), 10.0)
                idle_since = now
                continue
            assigned = consumer.assignment()
            if not assigned:
                unassigned_since = unassigned_since or now
                if now - unassigned_since > self._unassigned_after_s:
                    self._unassigned_after_s = min(self._unassigned_after_s * 2, _MAX_UNASSIGNED_S)
                    raise Stalled(
                        "unassigned",
                        f"no partitions of {', '.join(self.topics)} assigned for "
                        f"{now - unassigned_since:.0f}s",
                    )
                continue
            unassigned_since = None
            self._unassigned_after_s = self.stall_after_s
            if now - idle_since > self.stall_after_s:
                await self._check_lag(consumer, assigned, now - idle_since)
                idle_since = now  # checked: look again after another quiet spell

    async def _check_lag(
        self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition], idle_s: float
    ) -> None:
        """Raise ``Stalled`` if events wait on an assigned partition that is not fetched."""
        try:
            ends = await asyncio.wait_for(consumer.end_offsets(list(assigned)), 10.0)
            waiting = {}
            for tp in sorted(assigned):
                position = await asyncio.wait_for(consumer.position(tp), 10.0)
                if ends.get(tp, 0) > position:
                    waiting[f"{tp.topic}/{tp.partition}"] = ends[tp] - position
        except TimeoutError as exc:
            raise Stalled("stuck", f"offsets not answered within 10s (idle {idle_s:.0f}s)") from exc
        if waiting:
            raise Stalled(
                "stuck",
                f"{sum(waiting.values())} event(s) waiting ({waiting}) but none fetched "
                f"for {idle_s:.0f}s",
            )
