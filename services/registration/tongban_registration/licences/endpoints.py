from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tongban_kit.db import SessionDep
from tongban_kit.errors import BadRequest
from tongban_kit.openapi import problem_responses
from tongban_registration.businesses import service as businesses
from tongban_registration.businesses.schemas import LicenceOut, VerificationOut
from tongban_registration.deps import IdentityDep, SettingsDep
from tongban_registration.licences import service
from tongban_registration.licences.document import MalformedPayload, parse_qr_payload, qr_payload
from tongban_registration.licensing import verification
from tongban_registration.licensing.document import KIND as ACCREDITATION_KIND

router = APIRouter(tags=["licences"])


@router.get("/v1/businesses/{uscc}/licence", response_model=LicenceOut)
async def business_licence(
    uscc: str, session: SessionDep, identity: IdentityDep, settings: SettingsDep
) -> LicenceOut:
    """The electronic business licence: its document, the node's signature and the QR payload.

    Access: public (a licence is displayed publicly; it holds public fields only). Issued at
    approval, or here on first request when identity was away then (503 while it still is).
    Verify offline with identity's `/.well-known/document-jwks.json`, or at `/v1/licences/verify`.
    """
    business, _ = await businesses.get(session, uscc=uscc)
    licence = await service.issue(
        session, business=business, identity=identity, node=settings.node.node_code
    )
    return LicenceOut(
        uscc=licence.uscc,
        document=licence.document,
        document_sha256=licence.document_sha256,
        jws=licence.jws,
        qr_payload=qr_payload(licence.document, licence.jws),
        issued_at=licence.issued_at,
    )


@router.get("/v1/licences/verify", response_model=VerificationOut, responses=problem_responses(400))
async def verify_licence(
    session: SessionDep,
    payload: Annotated[
        str | None, Query(max_length=4096, description="The QR payload of a licence.")
    ] = None,
    uscc: Annotated[str | None, Query(max_length=32, description="Or a USCC.")] = None,
    number: Annotated[
        str | None, Query(max_length=40, description="Or an accreditation licence's number.")
    ] = None,
    *,
    settings: SettingsDep,
) -> VerificationOut:
    """Whether a licence is genuine and what the register says about the business now.

    Access: public. With `payload`: `valid` is whether it is a licence this node issued,
    unaltered (a business licence, or an accreditation licence: `kind` says which); with
    `uscc`: whether such a business is in the register; with `number`: whether such an
    accreditation licence exists. `status` is read from the register now, so a revocation
    or suspension shows on the next request; a licence past its validity reads `expired`.
    """
    node = settings.node.node_code
    if sum(given is not None for given in (payload, uscc, number)) != 1:
        raise BadRequest("give one of payload, uscc or number")
    if number is not None:
        return await verification.by_number(session, number=number, node=node)
    if payload is not None:
        try:
            document, raw, compact = parse_qr_payload(payload)
        except MalformedPayload as exc:
            return VerificationOut(valid=False, reason=str(exc))
        if document.get("type") == ACCREDITATION_KIND:
            return await verification.by_payload(
                session, document=document, raw=raw, compact=compact, node=node
            )
        result = await service.verify(session, payload=payload)
        if not result.valid or result.business is None:
            return VerificationOut(valid=False, reason=result.reason)
        business = result.business
    else:
        business, _ = await businesses.get(session, uscc=uscc or "")
    return VerificationOut(
        valid=True,
        uscc=business.uscc,
        name=business.name,
        status=business.status,
        status_changed_at=business.status_changed_at,
    )
