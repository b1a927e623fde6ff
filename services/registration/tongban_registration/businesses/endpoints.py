from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from tongban_kit.auth import AccessClaims, require
from tongban_kit.db import SessionDep
from tongban_registration.businesses import deregistration, service
from tongban_registration.businesses.schemas import BusinessList, BusinessOut
from tongban_registration.deps import SettingsDep, SubstantialPerson

router = APIRouter(prefix="/v1/businesses", tags=["register"])


@router.get("", response_model=BusinessList)
async def search_register(
    session: SessionDep,
    q: Annotated[
        str, Query(min_length=2, max_length=200, description="Part of a name, or a USCC.")
    ],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> BusinessList:
    """Search the public register by name or USCC. Access: public (public fields only; the
    legal representative's name masked, no resident ID)."""
    rows = await service.search(session, text=q, limit=limit)
    return BusinessList(items=[service.public_view(b, acknowledgements=()) for b in rows])


@router.get("/{uscc}", response_model=BusinessOut)
async def get_business(uscc: str, session: SessionDep) -> BusinessOut:
    """A business's public profile with its status now and the departments'
    acknowledgements. Access: public."""
    business, acknowledgements = await service.get(session, uscc=uscc)
    return service.public_view(business, acknowledgements=acknowledgements)


class DeregistrationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = Field(min_length=1, max_length=2000, description="Why the business closes.")


class Objection(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    objection: str = Field(
        min_length=1, max_length=2000, description="E.g. a debt the business still owes."
    )


@router.post("/{uscc}/deregistration", response_model=BusinessOut)
async def request_deregistration(
    uscc: str,
    body: DeregistrationRequest,
    caller: SubstantialPerson,
    session: SessionDep,
    settings: SettingsDep,
) -> BusinessOut:
    """Ask for simplified deregistration (简易注销): the business becomes `deregistering` and a
    public notice runs for `TONGBAN_REGISTRATION_DEREGISTRATION_NOTICE_DAYS` days.

    Access: the person whose application registered the business, at level `substantial`
    (404 for anyone else). 409 unless the business is active.
    """
    business = await deregistration.request(
        session,
        uscc=uscc,
        owner=caller.sub,
        reason=body.reason,
        notice_days=settings.deregistration_notice_days,
    )
    return service.public_view(business, acknowledgements=())


@router.post("/{uscc}/objections", response_model=BusinessOut)
async def object_to_deregistration(
    uscc: str,
    body: Objection,
    caller: Annotated[AccessClaims, Depends(require())],
    session: SessionDep,
) -> BusinessOut:
    """Object to a simplified deregistration during its notice: the business stays active.

    Access: any caller signed in at this node (a creditor, a department). 409 when no notice
    runs or it is over.
    """
    business = await deregistration.object_to(session, uscc=uscc, objection=body.objection)
    return service.public_view(business, acknowledgements=())
