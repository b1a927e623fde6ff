"""Appending to the message log and verifying it.

Each row's hash is SHA-256 over its fields and the previous row's hash, so an edited row no
longer matches its hash, a deleted one leaves a gap in the sequence and a broken link, and a
reordered one matches neither. Appends take a transaction-scoped advisory lock: the chain is
strictly ordered, and a row exists only if the delivery, publish or query it records does.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_exchange.log import signatures
from tongban_exchange.models import Checkpoint, LogEntry
from tongban_kit.db.bulk import as_columns, insert_columns
from tongban_kit.events.compact import compact_bytes

GENESIS = "0" * 64
#: pg_advisory_xact_lock key of the chain ("tblog").
LOG_LOCK = 0x74626C6F67
_HASHED = ("seq", "at", "kind", "sender", "recipient", "dataset", "event_id")
_HASHED += ("payload_sha256", "prev_hash")


def payload_digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def entry_hash(entry: LogEntry) -> str:
    return row_hash({name: getattr(entry, name) for name in _HASHED})


def row_hash(row: dict[str, Any]) -> str:
    """SHA-256 over a row's fields (time in whole microseconds) and the previous hash."""
    fields = [row[name] for name in _HASHED]
    fields[1] = round(row["at"].timestamp() * 1_000_000)
    return hashlib.sha256(compact_bytes(fields)).hexdigest()


def checkpoint_document(head_seq: int, head_hash: str) -> str:
    """The SHA-256 identity signs for a checkpoint."""
    return hashlib.sha256(f"tongban-exchange-log:{head_seq}:{head_hash}".encode()).hexdigest()


@dataclass(frozen=True)
class Message:
    """What one log row records: a delivery, publish or query of one payload."""

    kind: str
    sender: str
    recipient: str
    dataset: str
    event_id: str
    payload: bytes


async def append(session: AsyncSession, *messages: Message) -> int:
    """Add rows in the caller's transaction, after the current head, in the given order."""
    if not messages:
        return 0
    await session.execute(select(func.pg_advisory_xact_lock(LOG_LOCK)))
    head = (
        await session.execute(
            select(LogEntry.seq, LogEntry.hash).order_by(LogEntry.seq.desc()).limit(1)
        )
    ).first()
    seq, previous = (head.seq, head.hash) if head else (0, GENESIS)
    at = datetime.now(UTC)
    rows = []
    for message in messages:
        seq += 1
        row = {
            "seq": seq,
            "at": at,
            "kind": message.kind,
            "sender": message.sender,
            "recipient": message.recipient,
            "dataset": message.dataset,
            "event_id": message.event_id,
            "payload_sha256": payload_digest(message.payload),
            "prev_hash": previous,
        }
        row["hash"] = previous = row_hash(row)
        rows.append(row)
    await insert_columns(session, LogEntry.__table__, as_columns(rows))
    return len(rows)


@dataclass(frozen=True)
class Finding:
    seq: int
    problem: str


@dataclass(frozen=True)
class Report:
    rows: int
    checkpoints: int
    head_seq: int
    findings: list[Finding]
    signatures_checked: bool = False

    @property
    def ok(self) -> bool:
        return not self.findings


async def _rows(session: AsyncSession, batch: int = 5_000) -> AsyncIterator[LogEntry]:
    after = 0
    while True:
        page = list(
            await session.scalars(
                select(LogEntry).where(LogEntry.seq > after).order_by(LogEntry.seq).limit(batch)
            )
        )
        for row in page:
            yield row
        if len(page) < batch:
            return
        after = page[-1].seq


async def verify(
    session: AsyncSession, document_keys: dict[str, signatures.PublicKey] | None = None
) -> Report:
    """Walk the chain and the checkpoints; name every row that does not hold.

    With ``document_keys`` (the node's document JWK set) each checkpoint's signature is
    checked too; without, only that checkpoints agree with the chain.
    """
    findings: list[Finding] = []
    expected, previous, rows = 1, GENESIS, 0
    hashes: dict[int, str] = {}
    async for row in _rows(session):
        rows += 1
        if row.seq != expected:
            findings.append(
                Finding(expected, f"rows {expected}..{row.seq - 1} are missing (deleted)")
            )
        if row.prev_hash != previous:
            findings.append(Finding(row.seq, f"row {row.seq} does not link to the row before it"))
        if entry_hash(row) != row.hash:
            findings.append(
                Finding(row.seq, f"row {row.seq} was altered: it does not match its hash")
            )
        previous, expected = row.hash, row.seq + 1
        hashes[row.seq] = row.hash
    checkpoints = list(await session.scalars(select(Checkpoint).order_by(Checkpoint.id)))
    for checkpoint in checkpoints:
        held = hashes.get(checkpoint.head_seq)
        if held != checkpoint.head_hash:
            findings.append(
                Finding(
                    checkpoint.head_seq,
                    f"row {checkpoint.head_seq} differs from signed checkpoint {checkpoint.id}",
                )
            )
        document = checkpoint_document(checkpoint.head_seq, checkpoint.head_hash)
        if document != checkpoint.document_sha256:
            findings.append(Finding(checkpoint.head_seq, f"checkpoint {checkpoint.id} was altered"))
        elif document_keys is not None:
            problem = signatures.check(checkpoint.jws, document, document_keys)
            if problem is not None:
                findings.append(
                    Finding(checkpoint.head_seq, f"checkpoint {checkpoint.id}: {problem}")
                )
    return Report(rows, len(checkpoints), expected - 1, findings, document_keys is not None)
