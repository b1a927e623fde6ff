from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from tongban_identity.models import LegalPerson
from tongban_kit.db import SessionDep
from tongban_kit.errors import NotFound

router = APIRouter(prefix="/v1/legal-persons", tags=["legal persons"])


class LegalPersonOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    uscc: str
    name: str
    division_code: str
    registered_at: datetime


@router.get("/{uscc}", response_model=LegalPersonOut)
async def get_legal_person(uscc: str, session: SessionDep) -> LegalPersonOut:
    """A business as identity knows it. Access: public (the register is public)."""
    found = await session.get(LegalPerson, uscc.upper())
    if found is None:
        raise NotFound(f"no legal person with USCC {uscc}")
    return LegalPersonOut.model_validate(found)
