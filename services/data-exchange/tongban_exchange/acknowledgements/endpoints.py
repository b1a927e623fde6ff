"""Departments acknowledge business events; registration shows the applicant."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from tongban_exchange.acknowledgements import service
from tongban_kit.auth import AccessClaims, require
from tongban_kit.db import SessionDep

#: The scope a department needs to acknowledge business events.
ACKNOWLEDGE_SCOPE = "exchange:acknowledge"

router = APIRouter(prefix="/v1/acknowledgements", tags=["acknowledgements"])


class AcknowledgementCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    uscc: str = Field(min_length=18, max_length=18, description="The business's USCC.")
    reference: str = Field(min_length=1, max_length=128, description="The department's reference.")


class AcknowledgementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    uscc: str
    department: str
    reference: str
    recorded_at: datetime


@router.post("", status_code=201, response_model=AcknowledgementOut)
async def acknowledge(
    body: AcknowledgementCreate,
    session: SessionDep,
    request: Request,
    caller: Annotated[
        AccessClaims, Depends(require(ACKNOWLEDGE_SCOPE, principals=("department",)))
    ],
) -> AcknowledgementOut:
    """Record a department's acknowledgement of a registered business.

    Access: departments with the `exchange:acknowledge` scope; the acknowledging department
    is the one the token names, never one the body claims.
    Emits `gov.tongban.exchange.acknowledgement.recorded.v1`.
    """
    node = request.app.state.settings.node.node_code
    ack = await service.record(
        session,
        uscc=body.uscc,
        department=str(caller.department),
        reference=body.reference,
        node=node,
    )
    return AcknowledgementOut.model_validate(ack)
