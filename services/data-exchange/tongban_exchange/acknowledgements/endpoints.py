"""Departments acknowledge business events; registration shows the applicant."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from tongban_exchange.acknowledgements import service
from tongban_kit.db import SessionDep

router = APIRouter(prefix="/v1/acknowledgements", tags=["acknowledgements"])


class AcknowledgementCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    uscc: str = Field(min_length=18, max_length=18, description="The business's USCC.")
    department: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="Code of the acknowledging department.",
    )
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
    body: AcknowledgementCreate, session: SessionDep, request: Request
) -> AcknowledgementOut:
    """Record a department's acknowledgement of a registered business.

    Access: skeleton, open; the data-exchange issue restricts it to enrolled departments.
    Emits `gov.tongban.exchange.acknowledgement.recorded.v1`.
    """
    node = request.app.state.settings.node.node_code
    ack = await service.record(
        session, uscc=body.uscc, department=body.department, reference=body.reference, node=node
    )
    return AcknowledgementOut.model_validate(ack)
