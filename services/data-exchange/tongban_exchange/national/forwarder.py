"""The forwarder of a regional node: pending national events go to the central node.

Each event is POSTed to central's ``/v1/national/events`` with this node's assertion, oldest
first and one at a time, so the events of a subject arrive in the order they were accepted
here. While the link is down (no answer, a 5xx, a 401 while central's directory does not
know this node yet, a 404 while central's national exchange is off) the first pending event
waits with backoff (``national_backoff_initial_s`` doubling up to ``national_backoff_max_s``)
and every later one waits behind it: nothing is lost, the order holds. An event central
refuses for good (400, 403, 413, 422: it does not validate there) is marked ``refused`` with the
reason and the queue moves on. Central deduplicates by event id, so a forward repeated after a
lost answer changes nothing there. One replica forwards at a time (an advisory lock).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tongban_exchange.log import chain
from tongban_exchange.national import repository
from tongban_exchange.national.link import CentralLink
from tongban_exchange.runtime import Exchange
from tongban_kit.auth.node_keys import CENTRAL_NODE
from tongban_kit.auth.node_trust import ASSERTION_HEADER
from tongban_kit.errors import TongbanError

__all__ = ["Forwarder", "forward_context", "queued"]

logger = logging.getLogger("tongban.exchange.national")

_BATCH = 50
_REFUSED = frozenset({400, 403, 413, 422})


def forward_context(event_id: str) -> str:
    return f"national_forwards/{event_id}"


def queued(exchange: Exchange, event: dict[str, Any]) -> dict[str, Any]:
    """The row that queues ``event`` (an accepted national event, whole and sealed)."""
    return {
        "event_id": event["id"],
        "dataset": event["type"],
        "subject": event["subject"][:200],
        "sealed": exchange.seal(event, context=forward_context(event["id"])),
        "status": "pending",
        "attempts": 0,
    }


class Forwarder:
    def __init__(
        self,
        exchange: Exchange,
        sessionmaker: async_sessionmaker[AsyncSession],
        link: CentralLink,
    ) -> None:
        self.exchange = exchange
        self.sessionmaker = sessionmaker
        self.link = link

    async def run(self) -> None:
        settings = self.exchange.settings
        interval = settings.national_interval_s
        retention = timedelta(hours=settings.national_retention_hours)
        pruned_at = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                if loop.time() - pruned_at > 60:
                    pruned_at = loop.time()
                    async with self.sessionmaker() as session, session.begin():
                        await repository.prune(session, before=datetime.now(UTC) - retention)
                sent = await self.forward_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("national forwarding interrupted")
                sent = 0
            if sent == 0:
                await asyncio.sleep(interval)

    async def forward_once(self) -> int:
        """One pass; returns how many events central took."""
        sent = 0
        log: list[chain.Message] = []
        async with self.sessionmaker() as session, session.begin():
            if not await repository.take_lock(session):
                return 0
            for row in await repository.pending(session, _BATCH):
                now = datetime.now(UTC)
                if row.next_attempt_at > now:
                    break  # the link is backing off: every later event waits behind this one
                event = self.exchange.unseal(row.sealed, context=forward_context(row.event_id))
                status, problem = await self._post(event)
                if status is not None and status < 300:
                    await repository.mark(session, row.seq, status="forwarded", forwarded_at=now)
                    log.append(_forward_message(event))
                    self.exchange.metrics.national_forwarded.inc()
                    sent += 1
                elif status in _REFUSED:
                    logger.warning("central refused national event %s: %s", row.event_id, problem)
                    await repository.mark(
                        session, row.seq, status="refused", last_error=problem[:500]
                    )
                    self.exchange.metrics.national_refused.inc()
                else:
                    delay = self._backoff(row.attempts + 1)
                    await repository.mark(
                        session,
                        row.seq,
                        attempts=row.attempts + 1,
                        next_attempt_at=now + timedelta(seconds=delay),
                        last_error=problem[:500],
                    )
                    self.exchange.metrics.national_failed.inc()
                    logger.warning(
                        "forward to central failed (%s); next try in %.1fs", problem, delay
                    )
                    break
            await chain.append(session, *log)
            await self._observe(session)
        return sent

    async def _post(self, event: dict[str, Any]) -> tuple[int | None, str]:
        http = self.exchange.http
        assert http is not None
        try:
            url = f"{self.link.central_url()}/v1/national/events"
            response = await http.post(
                url,
                content=json.dumps(event, ensure_ascii=False).encode(),
                headers={
                    ASSERTION_HEADER: self.link.assertion(event["id"]),
                    "content-type": "application/cloudevents+json",
                },
            )
        except (httpx.HTTPError, TongbanError) as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return (
            response.status_code,
            f"central answered {response.status_code}: {response.text[:300]}",
        )

    def _backoff(self, attempts: int) -> float:
        settings = self.exchange.settings
        delay: float = settings.national_backoff_initial_s * 2 ** min(attempts - 1, 30)
        return min(delay, settings.national_backoff_max_s)

    async def _observe(self, session: AsyncSession) -> None:
        pending, oldest = await repository.backlog(session)
        metrics = self.exchange.metrics
        metrics.national_pending.set(pending)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        metrics.national_oldest_pending.set(max(age, 0.0))


def _forward_message(event: dict[str, Any]) -> chain.Message:
    """The log row of a forward: this node's event, handed to the central node."""
    return chain.Message(
        kind="forward",
        sender="node",
        recipient=f"node:{CENTRAL_NODE}",
        dataset=event["type"],
        event_id=event["id"],
        payload=json.dumps(event["data"], ensure_ascii=False, sort_keys=True).encode(),
    )
