"""Change filings over HTTP: the owner files, officers decide."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal, Self

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tongban_kit.db import SessionDep
from tongban_registration.applications.schemas import Address, LegalRepresentativeIn
from tongban_registration.businesses import changes
from tongban_registration.deps import (
    CipherDep,
    IdentityDep,
    Officer,
    SettingsDep,
    SubstantialPerson,
)
from tongban_registration.models import ChangeFiling

router = APIRouter(tags=["changes"])


class ChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=2, max_length=200)
    address: Address | None = None
    business_scope: str | None = Field(default=None, min_length=1, max_length=2000)
    legal_representative: LegalRepresentativeIn | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if all(getattr(self, f) is None for f in type(self).model_fields):
            raise ValueError("name at least one field to change")
        return self


class ChangeDecision(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    decision: Literal["approve", "reject"]
    reason: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _reason_to_reject(self) -> Self:
        if self.decision == "reject" and not self.reason:
            raise ValueError("a rejection needs a reason")
        return self


class ChangeFilingOut(BaseModel):
    id: uuid.UUID
    uscc: str
    status: str = Field(description="`submitted`, `approved` or `rejected`.")
    changed: list[str] = Field(description="The fields the filing changes.")
    reason: str | None
    created_at: datetime
    decided_at: datetime | None


def _out(filing: ChangeFiling) -> ChangeFilingOut:
    return ChangeFilingOut(
        id=filing.id,
        uscc=filing.uscc,
        status=filing.status,
        changed=sorted(filing.changes),
        reason=filing.reason,
        created_at=filing.created_at,
        decided_at=filing.decided_at,
    )


@router.post("/v1/businesses/{uscc}/changes", status_code=201, response_model=ChangeFilingOut)
async def file_change(
    uscc: str,
    body: ChangeRequest,
    caller: SubstantialPerson,
    session: SessionDep,
    settings: SettingsDep,
    cipher: CipherDep,
) -> ChangeFilingOut:
    """File a change of name, address, business scope or legal representative for review.

    Access: the person whose application registered the business, at level `substantial`
    (404 for anyone else). A new name is reserved now (409 with `conflicting_name` when
    held); one filing at a time per business (409).
    """
    filing = await changes.file(
        session,
        uscc=uscc,
        owner=caller.sub,
        name=body.name,
        address=body.address,
        business_scope=body.business_scope,
        legal_representative=body.legal_representative,
        node=settings.node.node_code,
        reservation_days=settings.name_reservation_days,
        cipher=cipher,
    )
    return _out(filing)


@router.get("/v1/businesses/{uscc}/changes", response_model=list[ChangeFilingOut])
async def my_changes(
    uscc: str, caller: SubstantialPerson, session: SessionDep
) -> list[ChangeFilingOut]:
    """The business's change filings, newest first. Access: its owner."""
    rows = await changes.of_business(session, uscc=uscc, owner=caller.sub)
    return [_out(f) for f in rows]


@router.get("/v1/review/changes", response_model=list[ChangeFilingOut])
async def open_changes(caller: Officer, session: SessionDep) -> list[ChangeFilingOut]:
    """Change filings waiting for a decision. Access: officers of this node."""
    return [_out(f) for f in await changes.open_filings(session)]


@router.post("/v1/review/changes/{filing_id}/decision", response_model=ChangeFilingOut)
async def decide_change(
    filing_id: uuid.UUID,
    body: ChangeDecision,
    caller: Officer,
    session: SessionDep,
    settings: SettingsDep,
    cipher: CipherDep,
    identity: IdentityDep,
) -> ChangeFilingOut:
    """Approve (the register changes, the licence is reissued, `business.changed` is emitted)
    or reject (with a reason; a reserved new name is released). Access: officers of this
    node. 409 once decided."""
    filing = await changes.decide(
        session,
        filing_id=filing_id,
        officer=caller.sub,
        approve=body.decision == "approve",
        reason=body.reason,
        node=settings.node.node_code,
        cipher=cipher,
        identity=identity,
    )
    return _out(filing)
