from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from tongban_exchange.catalogue.schemas import DEPARTMENT_PATTERN
from tongban_exchange.replays import service
from tongban_kit.auth import OPERATOR_SCOPE, AccessClaims, require
from tongban_kit.db import SessionDep

router = APIRouter(prefix="/v1/replays", tags=["replays"])


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(min_length=1, max_length=200)
    department: str = Field(pattern=DEPARTMENT_PATTERN)
    from_seq: int | None = Field(default=None, ge=1, description="First sequence to send.")
    from_time: AwareDatetime | None = Field(default=None, description="Or: first event time.")

    @model_validator(mode="after")
    def _one_start(self) -> ReplayRequest:
        if (self.from_seq is None) == (self.from_time is None):
            raise ValueError("give exactly one of from_seq and from_time")
        return self


class ReplayOut(BaseModel):
    grant_id: uuid.UUID
    mode: str
    events: int
    last_seq: int | None = Field(description="Replay again from last_seq + 1 for more.")


@router.post("", status_code=202, response_model=ReplayOut)
async def replay(
    body: ReplayRequest,
    session: SessionDep,
    request: Request,
    caller: Annotated[AccessClaims, Depends(require(OPERATOR_SCOPE))],
) -> ReplayOut:
    """Send a dataset's events again to a department, from a sequence number or a time,
    through the department's active grant (its fields and delivery mode; the same event
    ids, so the department's deduplication holds). At most 10,000 events per request.

    Access: operators (`tongban:admin`). 409 if the department holds no active grant.
    """
    grant, count, last = await service.replay(
        session,
        request.app.state.exchange,
        dataset_name=body.dataset,
        department=body.department,
        from_seq=body.from_seq,
        from_time=body.from_time,
    )
    return ReplayOut(grant_id=grant.id, mode=grant.mode, events=count, last_seq=last)
