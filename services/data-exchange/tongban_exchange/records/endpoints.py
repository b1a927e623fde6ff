from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from tongban_exchange.models import BusinessRecord
from tongban_kit.auth import AccessClaims, require
from tongban_kit.db import SessionDep
from tongban_kit.errors import NotFound

router = APIRouter(prefix="/v1/records", tags=["records"])


class BusinessRecordOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    uscc: str
    name: str
    division_code: str
    updated_at: datetime


@router.get("/businesses/{uscc}", response_model=BusinessRecordOut)
async def latest_business_record(
    uscc: str,
    session: SessionDep,
    caller: Annotated[AccessClaims, Depends(require())],
) -> BusinessRecordOut:
    """The latest business record by USCC.

    Access: any caller with a valid access token of this node (skeleton; the data-exchange
    issue puts record queries under grants with a stated purpose).
    """
    record = await session.get(BusinessRecord, uscc.upper())
    if record is None:
        raise NotFound(f"no business record for {uscc}")
    return BusinessRecordOut.model_validate(record)
