"""A submission kept as signed: its exact bytes, the applicant's signature, checked again."""

from __future__ import annotations

import base64
import hashlib
import uuid

from pydantic import BaseModel, Field

from tongban_kit.crypto import FieldCipher
from tongban_kit.errors import NotFound, ServiceUnavailable
from tongban_registration.applications.service import SUBMITTED_DOCUMENT_CONTEXT
from tongban_registration.identity_client import IdentityClient
from tongban_registration.models import Application


class Verification(BaseModel):
    checked: bool = Field(description="Whether identity could be asked just now.")
    valid: bool | None = Field(
        description="The signature is the applicant's, by one of their keys, of these bytes."
    )
    kid: str | None = None
    reason: str | None = None


class SubmissionOut(BaseModel):
    application_id: uuid.UUID
    document: str = Field(
        description="Base64 of the exact bytes submitted (canonical JSON, UTF-8): what the "
        "signature covers through its SHA-256. Holds personal data (the resident ID)."
    )
    document_sha256: str
    signature: str | None = Field(description="The applicant's detached JWS, as submitted.")
    signature_kid: str | None
    verification: Verification | None = Field(
        description="Identity's answer now (null when the submission was not signed)."
    )


async def kept(
    application: Application, *, cipher: FieldCipher, identity: IdentityClient | None
) -> SubmissionOut:
    """The submission's bytes and signature, the signature re-checked with identity."""
    if application.submitted_document is None or application.document_sha256 is None:
        raise NotFound(f"application {application.id} has not been submitted")
    raw = cipher.decrypt(application.submitted_document, context=SUBMITTED_DOCUMENT_CONTEXT)
    data = raw.encode()
    sha256 = hashlib.sha256(data).hexdigest()
    verification = None
    if application.signature is not None:
        verification = await _check(identity, application, sha256)
        if sha256 != application.document_sha256:  # cannot happen unless the row was altered
            verification = Verification(
                checked=True, valid=False, reason="the kept bytes do not match document_sha256"
            )
    return SubmissionOut(
        application_id=application.id,
        document=base64.b64encode(data).decode(),
        document_sha256=application.document_sha256,
        signature=application.signature,
        signature_kid=application.signature_kid,
        verification=verification,
    )


async def _check(
    identity: IdentityClient | None, application: Application, sha256: str
) -> Verification:
    if identity is None:
        return Verification(checked=False, valid=None, reason="no identity client on this node")
    try:
        person_id = uuid.UUID(application.applicant)
    except ValueError:
        return Verification(checked=True, valid=False, reason="the applicant is not a person")
    assert application.signature is not None
    try:
        answer = await identity.verify_person(
            person_id=person_id, sha256=sha256, jws=application.signature
        )
    except ServiceUnavailable as exc:
        return Verification(checked=False, valid=None, reason=exc.detail)
    return Verification(checked=True, valid=answer.valid, kid=answer.kid, reason=answer.reason)
