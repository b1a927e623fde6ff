"""Documents on an application: streamed into PostgreSQL in chunks as they arrive, hashed
on the way, their type told by their first bytes (never by what the client says).

An upload is one transaction: a refused one (415 type, 413 size) leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_kit.auth import AccessClaims
from tongban_kit.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, UnsupportedMediaType
from tongban_registration.applications import repository as applications
from tongban_registration.applications.states import Status
from tongban_registration.documents import repository
from tongban_registration.models import Application, ApplicationDocument

#: Rows of at most this many bytes; memory holds at most one of them plus one network read.
CHUNK_BYTES = 256 * 1024
#: Magic numbers of what an application may carry.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
_SNIFF_BYTES = max(len(magic) for magic, _ in SIGNATURES)
_EDITABLE = (Status.DRAFT, Status.RETURNED)


def sniff(head: bytes) -> str:
    for magic, content_type in SIGNATURES:
        if head.startswith(magic):
            return content_type
    raise UnsupportedMediaType(
        "only PDF, PNG and JPEG documents are accepted (told by the file's content)",
        accepted=[content_type for _, content_type in SIGNATURES],
    )


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"a document may be at most {max_bytes} bytes", limit_bytes=max_bytes)


async def upload(
    session: AsyncSession,
    *,
    applicant: str,
    application_id: uuid.UUID,
    filename: str,
    body: AsyncIterator[bytes],
    declared_bytes: int | None,
    max_bytes: int,
) -> ApplicationDocument:
    """Keep the body as a document of the caller's draft (or returned) application."""
    application = await applications.get(session, application_id, for_update=True)
    if application is None or application.applicant != applicant:
        raise NotFound(f"no application {application_id}")
    if Status(application.status) not in _EDITABLE:
        raise Conflict(
            f"documents go on a draft or a returned application, not a {application.status} one",
            current_status=application.status,
        )
    if declared_bytes is not None and declared_bytes > max_bytes:
        raise _too_large(max_bytes)
    document = ApplicationDocument(
        id=uuid.uuid4(),
        application_id=application.id,
        filename=filename,
        content_type="",
        size=0,
        sha256="",
    )
    await repository.add(session, document)
    hasher, pending, size, seq = hashlib.sha256(), bytearray(), 0, 0
    content_type: str | None = None
    async for piece in body:
        size += len(piece)
        if size > max_bytes:
            raise _too_large(max_bytes)
        hasher.update(piece)
        pending += piece
        if content_type is None and len(pending) >= _SNIFF_BYTES:
            content_type = sniff(bytes(pending[:_SNIFF_BYTES]))
        while len(pending) >= CHUNK_BYTES:
            await repository.add_chunk(session, document.id, seq, bytes(pending[:CHUNK_BYTES]))
            del pending[:CHUNK_BYTES]
            seq += 1
    if size == 0:
        raise BadRequest("the document is empty")
    if content_type is None:
        content_type = sniff(bytes(pending))
    if pending:
        await repository.add_chunk(session, document.id, seq, bytes(pending))
    document.content_type, document.size, document.sha256 = content_type, size, hasher.hexdigest()
    await session.flush()
    return document


async def readable(
    session: AsyncSession,
    *,
    caller: AccessClaims,
    is_officer: bool,
    application_id: uuid.UUID,
) -> Application:
    """The application, if the caller is its applicant or an officer of this node."""
    application = await applications.get(session, application_id)
    if application is None or not (is_officer or application.applicant == caller.sub):
        raise NotFound(f"no application {application_id}")
    return application


async def listed(session: AsyncSession, application_id: uuid.UUID) -> Sequence[ApplicationDocument]:
    return await repository.of_application(session, application_id)


async def one(
    session: AsyncSession, *, application_id: uuid.UUID, document_id: uuid.UUID
) -> ApplicationDocument:
    document = await repository.get(session, document_id)
    if document is None or document.application_id != application_id:
        raise NotFound(f"no document {document_id} on application {application_id}")
    return document
