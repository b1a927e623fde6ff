from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict

from tongban_identity.legal_persons import service
from tongban_identity.legal_persons.schemas import (
    ActAsRequest,
    ActingTokenResponse,
    RepresentedBusiness,
    RepresentedBusinesses,
)
from tongban_identity.models import LegalPerson
from tongban_identity.sessions import grants
from tongban_identity.sessions.issuing import TokenPolicy
from tongban_kit.auth import AccessClaims, require
from tongban_kit.db import SessionDep
from tongban_kit.errors import NotFound
from tongban_kit.identifiers import InvalidIdentifier, validate_uscc

router = APIRouter(prefix="/v1/legal-persons", tags=["legal persons"])
me_router = APIRouter(prefix="/v1/me", tags=["legal persons"])

SignedIn = Annotated[AccessClaims, Depends(require(principals=("person", "business")))]


class LegalPersonOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    uscc: str
    name: str
    division_code: str
    registered_at: datetime


@router.get("/{uscc}", response_model=LegalPersonOut)
async def get_legal_person(uscc: str, session: SessionDep) -> LegalPersonOut:
    """A business as identity knows it. Access: public (the register is public); the legal
    representative is not shown here."""
    try:
        found = await session.get(LegalPerson, validate_uscc(uscc))
    except InvalidIdentifier:  # no such code, so no such legal person
        found = None
    if found is None:
        raise NotFound("no legal person with that USCC")
    return LegalPersonOut.model_validate(found)


@me_router.get("/businesses", response_model=RepresentedBusinesses)
async def my_businesses(caller: SignedIn, session: SessionDep) -> RepresentedBusinesses:
    """The businesses the signed-in person may act for, and why (for now: as their legal
    representative, recorded from registration's business-registered events).

    Access: a signed-in person (also while acting for a business). 403 for department,
    service and operator tokens.
    """
    rows = await service.businesses_of(session, caller)
    return RepresentedBusinesses(
        items=[
            RepresentedBusiness(
                uscc=business.uscc,
                name=business.name,
                role=delegation.source,
                since=delegation.recorded_at,
            )
            for delegation, business in rows
        ]
    )


@me_router.post("/act-as", response_model=ActingTokenResponse)
async def act_as(
    body: ActAsRequest, caller: SignedIn, session: SessionDep, request: Request, response: Response
) -> ActingTokenResponse:
    """An access token for acting for a business the person represents: the same person
    (`sub`, `acr`, `amr`, `auth_time`, `scope`) with the business's USCC in `business`, so
    services see a `business` principal. It expires no later than the caller's token; refresh
    as usual and ask again. No refresh token.

    Access: a signed-in person. 403 (nothing written) unless a current delegation names them
    for this business; 422 for a malformed USCC. Audited and published as
    `gov.tongban.identity.security.acted_for_business.v1`.
    """
    acting = await service.act_as(
        session,
        TokenPolicy.of(request.app.state),
        caller=caller,
        sign_in=_sign_in(request),
        uscc=body.uscc,
        ip=grants.client_ip(request),
    )
    response.headers.update(grants.NO_STORE)
    return ActingTokenResponse(
        access_token=acting.access_token,
        expires_in=acting.expires_in,
        scope=acting.scope,
        business=acting.business,
    )


def _sign_in(request: Request) -> str | None:
    """The ``sid`` of the caller's token, which ``require`` has verified already (the kit's
    ``AccessClaims`` does not model it)."""
    token = request.headers["authorization"].partition(" ")[2].strip()
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    sid = claims.get("sid")
    return sid if isinstance(sid, str) else None
