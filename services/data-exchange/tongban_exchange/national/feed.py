"""The feed reader of a regional node: other nodes' national events, from the central node.

Every ``national_feed_interval_s`` the reader asks central's ``/v1/national/feed`` for the
events after its cursor (with this node's assertion for the feed) and takes each in as central
took in a forward (``service.take_in``): checked against this node's catalogue, deduplicated by
event id, logged as an arrival from ``node:100000`` and routed to this node's grants; the
cursor moves in the same transaction. An event this node cannot take (not national here, or
invalid) is logged and skipped. While central cannot be reached the reader backs off like
the forwarder; nothing is lost, since central keeps the events and the cursor waits.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tongban_exchange.national import repository, service
from tongban_exchange.national.link import CentralLink
from tongban_exchange.national.schemas import NationalEventIn
from tongban_exchange.runtime import Exchange
from tongban_kit.auth.node_keys import CENTRAL_NODE
from tongban_kit.auth.node_trust import ASSERTION_HEADER
from tongban_kit.errors import TongbanError

__all__ = ["FeedReader"]

logger = logging.getLogger("tongban.exchange.national")

_PAGE = 100


class FeedUnavailable(Exception):
    """Central's feed did not answer with a page."""


class FeedReader:
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
        delay = settings.national_backoff_initial_s
        while True:
            try:
                taken = await self.read_once()
                delay = settings.national_backoff_initial_s
                wait = 0.0 if taken == _PAGE else settings.national_feed_interval_s
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("reading central's national feed failed (%s)", exc)
                wait, delay = delay, min(delay * 2, settings.national_backoff_max_s)
            await asyncio.sleep(wait)

    async def read_once(self) -> int:
        """Read one page; returns how many events it held."""
        async with self.sessionmaker() as session, session.begin():
            if not await repository.take_lock(session, repository.FEED_LOCK):
                return 0
            after = await repository.cursor(session)
            page = await self._page(after)
            for raw in page["events"]:
                try:
                    body = NationalEventIn.model_validate(raw)
                    new = await service.take_in(
                        session, self.exchange, body=body, sender=CENTRAL_NODE
                    )
                except (ValidationError, service.InvalidNationalEvent) as exc:
                    logger.warning("national event %s from central skipped: %s", raw.get("id"), exc)
                    continue
                if new:
                    self.exchange.metrics.national_received.labels(CENTRAL_NODE, "accepted").inc()
            if page["next"] != after:
                await repository.set_cursor(session, int(page["next"]))
            return len(page["events"])

    async def _page(self, after: int) -> dict[str, Any]:
        http = self.exchange.http
        assert http is not None
        try:
            response = await http.get(
                f"{self.link.central_url()}/v1/national/feed",
                params={"after": after, "limit": _PAGE},
                headers={ASSERTION_HEADER: self.link.feed_assertion()},
            )
        except (httpx.HTTPError, TongbanError) as exc:
            raise FeedUnavailable(f"{type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise FeedUnavailable(f"central answered {response.status_code}: {response.text[:300]}")
        page: dict[str, Any] = response.json()
        return page
