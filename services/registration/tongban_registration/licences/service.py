"""Issuing the electronic business licence and verifying one against the register."""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_kit.errors import ServiceUnavailable
from tongban_registration.businesses import repository as businesses
from tongban_registration.businesses.service import mask_name
from tongban_registration.identity_client import IdentityClient
from tongban_registration.licences import repository
from tongban_registration.licences.document import (
    DOCUMENT_TYPE,
    MalformedPayload,
    attached,
    digest,
    licence_document,
    parse_qr_payload,
)
from tongban_registration.models import Business, BusinessLicence

logger = logging.getLogger("tongban.registration.licences")


async def issue(
    session: AsyncSession, *, business: Business, identity: IdentityClient | None, node: str
) -> BusinessLicence:
    """Sign and keep the business's licence (once; a concurrent issue yields the first)."""
    existing = await repository.of_business(session, business.uscc)
    if existing is not None:
        return existing
    if identity is None:
        raise ServiceUnavailable(
            "this node cannot sign licences yet: registration has no identity service account"
        )
    now = datetime.now(UTC)
    document = licence_document(
        business,
        licence_id=str(uuid.uuid4()),
        node=node,
        issued_at=now,
        masked_representative=mask_name(business.legal_representative_name),
    )
    sha256 = digest(document)
    jws = await identity.sign(
        sha256=sha256, document_type=DOCUMENT_TYPE, metadata={"uscc": business.uscc}
    )
    licence = BusinessLicence(
        business_id=business.id,
        uscc=business.uscc,
        document=document,
        document_sha256=sha256,
        jws=jws,
        issued_at=now,
    )
    if not await repository.add(session, licence):
        raced = await repository.of_business(session, business.uscc)
        assert raced is not None
        return raced
    return licence


async def try_issue(
    session: AsyncSession, *, business: Business, identity: IdentityClient | None, node: str
) -> None:
    """At approval: issue now if identity answers; otherwise the first request for the
    licence issues it (an approval never waits on, or fails for, identity being away)."""
    if identity is None:
        return
    try:
        await issue(session, business=business, identity=identity, node=node)
    except ServiceUnavailable as exc:
        logger.warning("licence of %s left for later: %s", business.uscc, exc.detail)


@dataclass(frozen=True)
class Verification:
    valid: bool
    reason: str | None = None
    business: Business | None = None


async def verify(session: AsyncSession, *, payload: str) -> Verification:
    """Whether ``payload`` is a licence this node issued, unaltered; with the business now.

    The register is the authority here: the payload must match the licence on record byte
    for byte (its document digest and the node's signature). Offline verifiers check the
    same signature with the document JWKS instead.
    """
    try:
        document, raw, compact = parse_qr_payload(payload)
    except MalformedPayload as exc:
        return Verification(False, str(exc))
    uscc = document.get("uscc")
    licence = await repository.of_business(session, uscc) if isinstance(uscc, str) else None
    if licence is None:
        return Verification(False, "no licence of this node has this USCC")
    if hashlib.sha256(raw).hexdigest() != licence.document_sha256:
        return Verification(False, "the licence document was altered")
    if compact != attached(licence.jws, licence.document_sha256):
        return Verification(False, "the signature is not the node's signature of this licence")
    return Verification(True, business=await businesses.by_uscc(session, licence.uscc))
