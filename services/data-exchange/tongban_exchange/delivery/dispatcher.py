"""The dispatcher: makes Kafka and webhook deliveries, retries with back-off, gives up.

Two ways in, one way out:

- **Fresh deliveries** are handed over in memory by the routing consumer once the transaction
  that stored them has committed (``offer``), with their projection still in hand: no polling,
  no reading back, no unsealing. Routing stores them with ``next_attempt_at`` a lease
  (``handoff_lease_s``) ahead, so no poller takes them while this process works on them; if the
  process dies, the lease runs out and they are polled like any other. Webhooks go in a queue
  per department, so a slow receiver holds back only its own deliveries.
- **Due deliveries** (retries, redeliveries, publishes, replays, and fresh ones whose lease ran
  out) are polled with ``FOR UPDATE SKIP LOCKED``, so several replicas share the work.

Either way a delivery of a revoked grant is cancelled, not made; outcomes are written with a
statement per kind (delivered, cancelled, failed). A webhook that fails waits
``initial * 2^attempts`` (capped) and is dead-lettered once ``webhook_retry_hours`` have passed
since the delivery was made; a department asks for a redelivery over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ARRAY, BigInteger, any_, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tongban_exchange.delivery.attempt import Attempt
from tongban_exchange.delivery.senders import WEBHOOK_CONCURRENCY, KafkaSender, WebhookSender
from tongban_exchange.models import Delivery, Grant
from tongban_exchange.routing.service import delivery_context
from tongban_exchange.runtime import Exchange

logger = logging.getLogger("tongban.exchange.dispatcher")

BATCH = 500
LAG_EVERY_S = 2.0
#: How long a department's revocation may take to reach the fresh path.
GRANTS_FRESH_S = 1.0


class Dispatcher:
    def __init__(self, exchange: Exchange, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.exchange = exchange
        self.settings = exchange.settings
        self.sessionmaker = sessionmaker
        self.kafka = KafkaSender(exchange.settings)
        self.webhooks = WebhookSender(exchange.settings, exchange.cipher, sessionmaker)
        self._fresh: dict[tuple[str, str], asyncio.Queue[Attempt]] = {}
        self._fresh_tasks: set[asyncio.Task[None]] = set()
        self._granted: set[uuid.UUID] = set()
        self._granted_at = -GRANTS_FRESH_S
        self._lag_at = 0.0
        # Past this age a fresh delivery is left to the poller: it would not be sent before
        # its lease ran out (a webhook can take its whole timeout).
        self._stale_s = self.settings.handoff_lease_s - self.settings.webhook_timeout_s

    async def run(self) -> None:
        """The pollers of both modes; fresh deliveries get their loops as they come."""
        self.exchange.dispatcher = self
        try:
            await asyncio.gather(self._poll("kafka"), self._poll("webhook"))
        finally:
            self.exchange.dispatcher = None
            for task in self._fresh_tasks:
                task.cancel()
            if self._fresh_tasks:
                await asyncio.wait(self._fresh_tasks, timeout=5)
            await self.kafka.reset()
            await self.webhooks.close()

    # -- fresh deliveries, handed over by routing ------------------------------------------

    def offer(self, attempts: Iterable[Attempt]) -> None:
        """Take committed fresh deliveries (Kafka all in one queue, webhooks per department)."""
        for attempt in attempts:
            key = (attempt.mode, attempt.department if attempt.mode == "webhook" else "")
            queue = self._fresh.get(key)
            if queue is None:
                queue = self._fresh[key] = asyncio.Queue()
                task = asyncio.create_task(self._fresh_loop(queue), name=f"exchange-fresh-{key}")
                self._fresh_tasks.add(task)
                task.add_done_callback(self._fresh_tasks.discard)
            queue.put_nowait(attempt)

    async def _fresh_loop(self, queue: asyncio.Queue[Attempt]) -> None:
        """Make a batch, then the next while the one before is written down (one behind at
        most: the next batch need not wait for a commit)."""
        settling: asyncio.Task[None] | None = None
        try:
            while True:
                batch = [await queue.get()]
                while not queue.empty() and len(batch) < BATCH:
                    batch.append(queue.get_nowait())
                cutoff = time.monotonic() - self._stale_s
                batch = [a for a in batch if a.handed_at > cutoff]
                try:
                    granted = await self._granted_now({a.grant_id for a in batch})
                    await self._make(batch, granted)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    await self._left_to_poller(batch, exc)
                    continue
                if settling is not None:
                    await settling
                settling = asyncio.create_task(self._settle_fresh(batch))
        finally:
            if settling is not None:  # write down what was made (else it is made again)
                await asyncio.wait([settling], timeout=5)

    async def _settle_fresh(self, batch: Sequence[Attempt]) -> None:
        try:
            async with self.sessionmaker() as session, session.begin():
                await self._settle(session, batch)
        except Exception as exc:
            await self._left_to_poller(batch, exc)

    async def _left_to_poller(self, batch: Sequence[Attempt], exc: Exception) -> None:
        # Nothing is lost: the rows are pending and the poller takes them when their lease
        # runs out (or sooner, once released).
        logger.warning("fresh deliveries left to the poller: %s", exc)
        await self._release(batch)

    async def _granted_now(self, grant_ids: set[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these grants are granted, as of at most ``GRANTS_FRESH_S`` ago."""
        now = time.monotonic()
        if now - self._granted_at > GRANTS_FRESH_S or not grant_ids <= self._granted:
            async with self.sessionmaker() as session:
                self._granted = set(
                    await session.scalars(select(Grant.id).where(Grant.status == "granted"))
                )
            self._granted_at = now
        return self._granted

    async def _release(self, batch: Sequence[Attempt]) -> None:
        """Give fresh deliveries to the poller now rather than at the end of their lease."""
        try:
            async with self.sessionmaker() as session, session.begin():
                await session.execute(
                    update(Delivery)
                    .where(Delivery.id == any_(_ids(batch)), Delivery.status == "pending")
                    .values(next_attempt_at=func.now() + timedelta(seconds=1))
                )
        except Exception as exc:
            logger.warning("could not release %d fresh deliveries: %s", len(batch), exc)

    # -- due deliveries, polled -----------------------------------------------------------

    async def _poll(self, mode: str) -> None:
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
                    await self.kafka.reset()
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
            batch = []
            for delivery, _, url in rows:
                text = self.exchange.unseal_text(
                    delivery.sealed, context=delivery_context(delivery.grant_id, delivery.event_id)
                )
                batch.append(
                    Attempt(
                        id=delivery.id,
                        grant_id=delivery.grant_id,
                        department=delivery.department,
                        dataset=delivery.dataset,
                        mode=delivery.mode,
                        value=json.loads(text),
                        text=text,
                        url=url,
                        attempts=delivery.attempts,
                        created_at=delivery.created_at,
                    )
                )
            granted = {delivery.grant_id for delivery, status, _ in rows if status == "granted"}
            await self._make(batch, granted)
            await self._settle(session, batch)
            return len(rows)

    # -- making deliveries and writing down what happened ----------------------------------

    async def _make(self, batch: Sequence[Attempt], granted: set[uuid.UUID]) -> None:
        """Send what is still granted; set ``error`` on those that failed. Kafka failing as a
        whole raises (the broker is the outage, not the delivery)."""
        live = [a for a in batch if a.grant_id in granted]
        await self.kafka.send([(a.department, a.value) for a in live if a.mode == "kafka"])
        hooks = [a for a in live if a.mode == "webhook"]

        waiting = iter(hooks)

        async def post() -> None:
            # As many posters as a receiver takes connections, each taking the next delivery:
            # no task, and no wait for a connection, per delivery.
            for attempt in waiting:
                if attempt.url is None:
                    attempt.error = "the grant has no webhook URL"
                    continue
                attempt.error = await self.webhooks.post(
                    attempt.department, attempt.url, attempt.value["id"], attempt.text.encode()
                )

        await asyncio.gather(*(post() for _ in range(min(len(hooks), WEBHOOK_CONCURRENCY))))
        now = datetime.now(UTC)
        metrics = self.exchange.metrics
        for attempt in live:
            if attempt.error is None:  # made: counted now, written down by ``_settle``
                labels = (attempt.dataset, attempt.department)
                metrics.delivered.labels(*labels, attempt.mode).inc()
                latency = (now - datetime.fromisoformat(attempt.value["time"])).total_seconds()
                metrics.latency.labels(*labels).observe(max(latency, 0.0))
        for attempt in batch:
            if attempt.grant_id not in granted:
                attempt.error = "cancelled"

    async def _settle(self, session: AsyncSession, batch: Sequence[Attempt]) -> None:
        """Write the outcomes: a statement for the delivered, one for the cancelled, and one
        (many rows) for the failed."""
        now = datetime.now(UTC)
        delivered = [a for a in batch if a.error is None]
        cancelled = [a for a in batch if a.error == "cancelled"]
        failed = [a for a in batch if a.error not in (None, "cancelled")]
        pending = Delivery.status == "pending"
        if delivered:
            await session.execute(
                update(Delivery)
                .where(Delivery.id == any_(_ids(delivered)), pending)
                .values(status="delivered", delivered_at=now, attempts=Delivery.attempts + 1)
                .execution_options(synchronize_session=False)
            )
        if cancelled:
            await session.execute(
                update(Delivery)
                .where(Delivery.id == any_(_ids(cancelled)), pending)
                .values(status="cancelled")
                .execution_options(synchronize_session=False)
            )
        if failed:
            await session.execute(
                update(Delivery.__table__)
                .where(Delivery.id == bindparam("b_id"), pending)
                .values(
                    attempts=bindparam("b_attempts"),
                    last_error=bindparam("b_error"),
                    status=bindparam("b_status"),
                    next_attempt_at=bindparam("b_next"),
                ),
                [self._failed(a, now) for a in failed],
            )

    def _failed(self, attempt: Attempt, now: datetime) -> dict[str, Any]:
        attempts = attempt.attempts + 1
        metrics = self.exchange.metrics
        metrics.failed.labels(attempt.dataset, attempt.department).inc()
        give_up = attempt.created_at + timedelta(hours=self.settings.webhook_retry_hours)
        wait = min(
            self.settings.webhook_backoff_initial_s * 2 ** (attempts - 1),
            self.settings.webhook_backoff_max_s,
        )
        status = "pending"
        if now + timedelta(seconds=wait) > give_up:
            status = "dead"
            metrics.dead_lettered.labels(attempt.dataset, attempt.department).inc()
            logger.warning("delivery %d to %s dead-lettered", attempt.id, attempt.department)
        return {
            "b_id": attempt.id,
            "b_attempts": attempts,
            "b_error": attempt.error,
            "b_status": status,
            "b_next": now + timedelta(seconds=wait),
        }

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


def _ids(attempts: Sequence[Attempt]) -> Any:
    """The attempts' ids as one array parameter: the statement's text is the same for any
    number of them, so it is prepared once."""
    return bindparam("ids", [a.id for a in attempts], type_=ARRAY(BigInteger))


async def redeliver(session: AsyncSession, *, delivery: Delivery) -> None:
    """Make a delivery again, from its first attempt (a department's request)."""
    await session.execute(
        update(Delivery)
        .where(Delivery.id == delivery.id)
        .values(status="pending", attempts=0, next_attempt_at=func.now(), created_at=func.now())
    )
