"""Documents on an application: upload (streamed), list, download."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from tongban_kit.auth import AccessClaims, require
from tongban_kit.db import SessionDep
from tongban_kit.errors import BadRequest
from tongban_registration.applications import submission
from tongban_registration.applications.submission import SubmissionOut
from tongban_registration.deps import (
    REVIEW_SCOPE,
    CipherDep,
    IdentityDep,
    Person,
    SettingsDep,
)
from tongban_registration.documents import repository, service
from tongban_registration.documents.schemas import DocumentList, DocumentOut

router = APIRouter(prefix="/v1/applications/{application_id}/documents", tags=["documents"])

#: The path whose bodies may exceed the node's limit (up to `document_max_bytes`).
UPLOAD_PATH = r"/v1/applications/[^/]+/documents"

AnyCaller = Annotated[AccessClaims, Depends(require())]
Filename = Annotated[
    str,
    Query(
        min_length=1,
        max_length=200,
        pattern=r"^[^/\\\x00-\x1f]+$",
        description="The file's name as the applicant knows it (no path).",
    ),
]


@router.post(
    "",
    status_code=201,
    response_model=DocumentOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                t: {"schema": {"type": "string", "format": "binary"}}
                for t in (
                    "application/pdf",
                    "image/png",
                    "image/jpeg",
                )
            },
        }
    },
)
async def upload_document(
    application_id: uuid.UUID,
    filename: Filename,
    request: Request,
    caller: Person,
    session: SessionDep,
    settings: SettingsDep,
) -> DocumentOut:
    """Upload a document to a draft or returned application: the file is the raw body.

    Access: the applicant (404 for anyone else). The type is told by the file's content:
    PDF, PNG or JPEG, otherwise 415. Larger than `document_max_bytes` is a 413. The body is
    streamed into the database as it arrives and hashed on the way; the digest then belongs
    to the content the applicant signs at submission (`document_sha256` changes). 409 once
    submitted.
    """
    declared = request.headers.get("content-length")
    try:
        document = await service.upload(
            session,
            applicant=caller.sub,
            application_id=application_id,
            filename=filename,
            body=request.stream(),
            declared_bytes=int(declared) if declared and declared.isdigit() else None,
            max_bytes=settings.document_max_bytes,
        )
    except ClientDisconnect:  # the upload broke off: nothing is kept
        raise BadRequest("the upload ended before the document was complete") from None
    return DocumentOut.model_validate(document)


def _is_officer(caller: AccessClaims, node: str) -> bool:
    return REVIEW_SCOPE in caller.scopes and caller.node == node


@router.get("", response_model=DocumentList)
async def list_documents(
    application_id: uuid.UUID, caller: AnyCaller, session: SessionDep, settings: SettingsDep
) -> DocumentList:
    """The documents of an application with their digests.

    Access: the applicant and officers of this node (`registration:review`); 404 otherwise.
    """
    await service.readable(
        session,
        caller=caller,
        is_officer=_is_officer(caller, settings.node.node_code),
        application_id=application_id,
    )
    rows = await service.listed(session, application_id)
    return DocumentList(items=[DocumentOut.model_validate(d) for d in rows])


@router.get("/{document_id}", response_class=StreamingResponse)
async def download_document(
    application_id: uuid.UUID,
    document_id: uuid.UUID,
    caller: AnyCaller,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> StreamingResponse:
    """The file, streamed as stored, with its SHA-256 in `Digest`-style `Repr-Digest`.

    Access: the applicant and officers of this node (`registration:review`); 404 otherwise.
    """
    await service.readable(
        session,
        caller=caller,
        is_officer=_is_officer(caller, settings.node.node_code),
        application_id=application_id,
    )
    document = await service.one(session, application_id=application_id, document_id=document_id)
    sessionmaker = request.app.state.sessionmaker

    async def chunks() -> AsyncIterator[bytes]:
        # The request's session is closed once the endpoint returns; chunks are read after.
        seq = 0
        while True:
            async with sessionmaker() as reader:
                data = await repository.chunk(reader, document.id, seq)
            if data is None:
                return
            yield data
            seq += 1

    return StreamingResponse(
        chunks(),
        media_type=document.content_type,
        headers={
            "content-length": str(document.size),
            "x-content-type-options": "nosniff",
            "content-disposition": "attachment",
            "repr-digest": f"sha-256=:{_b64_hex(document.sha256)}:",
        },
    )


def _b64_hex(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


submission_router = APIRouter(tags=["applications"])


@submission_router.get("/v1/applications/{application_id}/submission", response_model=SubmissionOut)
async def submitted_as_signed(
    application_id: uuid.UUID,
    caller: AnyCaller,
    session: SessionDep,
    settings: SettingsDep,
    cipher: CipherDep,
    identity: IdentityDep,
) -> SubmissionOut:
    """The exact bytes of the latest submission and the applicant's signature of them, the
    signature checked again with identity now (`verification`), so it can be verified long
    after submission — also offline: the JWS's payload is the SHA-256 of `document`.

    Access: the applicant and officers of this node (`registration:review`); 404 otherwise,
    and for an application never submitted.
    """
    application = await service.readable(
        session,
        caller=caller,
        is_officer=_is_officer(caller, settings.node.node_code),
        application_id=application_id,
    )
    return await submission.kept(application, cipher=cipher, identity=identity)
