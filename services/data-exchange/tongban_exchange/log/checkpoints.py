"""Checkpoints: at least every ``checkpoint_interval_s`` the chain head is signed by identity
with the node's document key (``identity:sign``), so the log can be checked against a
signature nobody at this service could forge."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tongban_exchange.log.chain import checkpoint_document
from tongban_exchange.models import Checkpoint, LogEntry
from tongban_exchange.runtime import Exchange

logger = logging.getLogger("tongban.exchange.checkpoints")

SIGN_PATH = "/v1/internal/signatures"
SIGN_SCOPE = "identity:sign"


class Checkpointer:
    def __init__(self, exchange: Exchange, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.exchange = exchange
        self.sessionmaker = sessionmaker
        self._warned = False

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.exchange.settings.checkpoint_interval_s)
            try:
                await self.checkpoint()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("checkpoint failed, trying again next time: %s", exc)

    async def checkpoint(self) -> Checkpoint | None:
        """Sign the current head if it moved since the last checkpoint."""
        async with self.sessionmaker() as session, session.begin():
            head = (
                await session.execute(
                    select(LogEntry.seq, LogEntry.hash).order_by(LogEntry.seq.desc()).limit(1)
                )
            ).first()
            last = await session.scalar(select(Checkpoint.head_seq).order_by(Checkpoint.id.desc()))
            if head is None or head.seq == last:
                return None
            headers = await self.exchange.identity_headers()
            if headers is None or self.exchange.http is None:
                if not self._warned:
                    logger.warning("not enrolled at identity: log checkpoints are not signed")
                    self._warned = True
                return None
            document = checkpoint_document(head.seq, head.hash)
            response = await self.exchange.http.post(
                self.exchange.identity_url() + SIGN_PATH,
                json={
                    "document_sha256": document,
                    "document_type": "audit-checkpoint",
                    "metadata": {"head_seq": str(head.seq)},
                },
                headers=headers,
            )
            response.raise_for_status()
            signed = response.json()
            checkpoint = Checkpoint(
                head_seq=head.seq,
                head_hash=head.hash,
                document_sha256=document,
                kid=signed["kid"],
                jws=signed["jws"],
                signed_at=datetime.fromisoformat(signed["signed_at"]),
            )
            session.add(checkpoint)
            return checkpoint
