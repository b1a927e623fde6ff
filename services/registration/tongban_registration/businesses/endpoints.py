from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from tongban_kit.auth import AccessClaims, require
from tongban_kit.db import SessionDep
from tongban_registration.businesses import service
from tongban_registration.businesses.schemas import AcknowledgementOut, BusinessCreate, BusinessOut

router = APIRouter(prefix="/v1/businesses", tags=["businesses"])


@router.post("", status_code=201, response_model=BusinessOut)
async def register_business(
    body: BusinessCreate,
    session: SessionDep,
    request: Request,
    caller: Annotated[AccessClaims, Depends(require())],
) -> BusinessOut:
    """Register a business and give it a USCC.

    Access: any caller with a valid access token of this node (skeleton; the registration
    issue replaces it with applications and officer review). Emits
    `gov.tongban.registration.business.registered.v1`.
    """
    node = request.app.state.settings.node.node_code
    business = await service.register(
        session, name=body.name, division_code=body.division_code, node=node
    )
    return BusinessOut.model_validate(business)


@router.get("/{uscc}", response_model=BusinessOut)
async def get_business(uscc: str, session: SessionDep) -> BusinessOut:
    """A registered business with the departments' acknowledgements. Access: public."""
    business, acknowledgements = await service.get(session, uscc=uscc)
    out = BusinessOut.model_validate(business)
    out.acknowledgements = [AcknowledgementOut.model_validate(a) for a in acknowledgements]
    return out
