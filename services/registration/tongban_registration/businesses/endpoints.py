from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tongban_kit.db import SessionDep
from tongban_registration.businesses import service
from tongban_registration.businesses.schemas import BusinessList, BusinessOut

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
