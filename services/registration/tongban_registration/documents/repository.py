from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_registration.models import ApplicationDocument, DocumentChunk


async def add(session: AsyncSession, document: ApplicationDocument) -> None:
    session.add(document)
    await session.flush()


async def add_chunk(session: AsyncSession, document_id: uuid.UUID, seq: int, data: bytes) -> None:
    await session.execute(insert(DocumentChunk).values(document_id=document_id, seq=seq, data=data))


async def of_application(
    session: AsyncSession, application_id: uuid.UUID
) -> Sequence[ApplicationDocument]:
    rows = await session.scalars(
        select(ApplicationDocument)
        .where(ApplicationDocument.application_id == application_id)
        .order_by(ApplicationDocument.created_at, ApplicationDocument.id)
    )
    return rows.all()


async def get(session: AsyncSession, document_id: uuid.UUID) -> ApplicationDocument | None:
    return await session.get(ApplicationDocument, document_id)


async def chunk(session: AsyncSession, document_id: uuid.UUID, seq: int) -> bytes | None:
    data: bytes | None = await session.scalar(
        select(DocumentChunk.data).where(
            DocumentChunk.document_id == document_id, DocumentChunk.seq == seq
        )
    )
    return data
