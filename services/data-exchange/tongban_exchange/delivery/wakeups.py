"""Long polls on every replica wake when pull deliveries commit on any of them.

The transaction that stores pull deliveries notifies ``CHANNEL`` with each department they
are for (``notify``). PostgreSQL delivers a notification only if that transaction commits,
and only then, to every connection listening on the same database; it folds identical ones of
a transaction into one. Each data-exchange process holds one connection of its own, outside
the pool, that listens (``PullWakeups``) and rings its ``Doorbell`` for the department named.
The process that committed also rings its own doorbell at once (``routing.service``), a
notification's round trip sooner; a poll rung twice only reads once more.

Notifications are a shortcut, not the record: the deliveries are. While the listening
connection is down, notifications are lost and long polls still read every
``delivery.endpoints.POLL_S``; the listener reconnects with back-off and, once it listens
again, wakes every waiting poll to read what it may have missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

import asyncpg
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Text

from tongban_exchange.delivery.doorbell import Doorbell
from tongban_kit.db.engine import libpq_dsn

__all__ = ["CHANNEL", "PullWakeups", "notify"]

logger = logging.getLogger("tongban.exchange.wakeups")

#: NOTIFY is per database, so this name only has to be unique among this database's channels.
CHANNEL = "tongban_exchange_pull"
_NOTIFY = text("SELECT pg_notify(:channel, d) FROM unnest(:departments) AS d").bindparams(
    bindparam("departments", type_=ARRAY(Text))
)
_RETRY_FIRST_S = 0.1
_RETRY_MAX_S = 5.0
#: How often an idle listening connection is asked whether it still works: a connection a
#: network fault cut off without a word (no FIN, no RST) would otherwise listen to nothing.
_CHECK_EVERY_S = 30.0
_CHECK_TIMEOUT_S = 5.0


async def notify(session: AsyncSession, departments: Iterable[str]) -> None:
    """Wake, once the caller's transaction commits, every replica's long polls of these
    departments (one statement, whatever their number)."""
    unique = sorted(set(departments))
    if unique:
        await session.execute(_NOTIFY, {"channel": CHANNEL, "departments": unique})


class PullWakeups:
    """One process's listening connection: rings ``doorbell`` for every notified department.

    ``run`` listens until cancelled, reconnecting after the connection drops (a warning once
    per outage, and a line when it listens again).
    """

    def __init__(self, database_url: str, doorbell: Doorbell) -> None:
        self._dsn = libpq_dsn(database_url)
        self._doorbell = doorbell
        self._connection: asyncpg.Connection | None = None
        self.listening = asyncio.Event()  # set while notifications reach this process

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL backend that listens for this process, while it does."""
        connection = self._connection
        if connection is None or connection.is_closed():
            return None
        pid: int = connection.get_server_pid()
        return pid

    async def run(self) -> None:
        retry_s = _RETRY_FIRST_S
        down = False
        try:
            while True:
                lost = asyncio.Event()
                try:
                    connection = await self._listen(lost)
                except Exception as exc:  # whatever it is, try again: polls still poll meanwhile
                    problem = f"cannot listen: {exc!r}"
                else:
                    if down:
                        logger.info("pull wake-ups: listening again")
                    down, retry_s = False, _RETRY_FIRST_S
                    # Notifications sent while nobody listened are gone: every waiting poll
                    # reads again (at start, none waits).
                    self._doorbell.ring_all()
                    problem = await self._watch(connection, lost)
                self._close()
                if not down:
                    down = True
                    logger.warning(
                        "pull wake-ups: %s; long polls see other replicas' deliveries only by "
                        "polling until the connection is back",
                        problem,
                    )
                await asyncio.sleep(retry_s)
                retry_s = min(retry_s * 2, _RETRY_MAX_S)
        finally:
            self._close()

    async def _listen(self, lost: asyncio.Event) -> asyncpg.Connection:
        connection: asyncpg.Connection = await asyncpg.connect(
            self._dsn,
            timeout=_CHECK_TIMEOUT_S,
            server_settings={"application_name": "tongban-exchange-pull-wakeups"},
        )
        self._connection = connection
        connection.add_termination_listener(lambda _: lost.set())
        await connection.add_listener(CHANNEL, self._notified)
        self.listening.set()
        return connection

    def _notified(self, _connection: object, _pid: int, _channel: str, department: str) -> None:
        self._doorbell.ring((department,))

    async def _watch(self, connection: asyncpg.Connection, lost: asyncio.Event) -> str:
        """Wait until the connection is lost (or stops answering); say why."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), _CHECK_EVERY_S)
                return "the connection was closed"
            try:
                await connection.execute("SELECT 1", timeout=_CHECK_TIMEOUT_S)
            except Exception as exc:
                return f"the connection stopped answering: {exc!r}"

    def _close(self) -> None:
        self.listening.clear()
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            connection.terminate()  # no goodbye: it may be a connection that no longer answers
