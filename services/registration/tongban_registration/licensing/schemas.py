from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tongban_registration.licensing.types import LicenceType


class LicenceTypeList(BaseModel):
    items: list[LicenceType]


class LicenceApplicationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    uscc: str = Field(min_length=18, max_length=18, description="The applying business.")
    licence_type: str = Field(min_length=1, max_length=40, description="A configured type code.")


class LicenceDecision(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    decision: Literal["approve", "reject"]
    reason: str | None = Field(default=None, max_length=2000, description="Required to reject.")


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = Field(min_length=1, max_length=2000, description="Why; kept in the history.")


class PrerequisitesOut(BaseModel):
    licence_type: str
    met: bool
    unmet: list[dict[str, str]] = Field(
        description="Every unmet prerequisite at once: `prerequisite` (`active_business`, "
        "`business_scope`, `licence`, `department_record`) and `detail`."
    )


class HistoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    action: str
    from_status: str | None
    to_status: str
    actor: str
    reason: str | None
    valid_until: date
    at: datetime


class LicenceOut(BaseModel):
    number: str
    licence_type: str
    uscc: str
    status: str = Field(description="`active`, `suspended`, `revoked` or `expired`.")
    valid_from: date
    valid_until: date
    document: dict[str, object] = Field(description="The licence's content, as signed.")
    document_sha256: str
    jws: str = Field(description="The node's detached JWS (RFC 7797) of `document_sha256`.")
    qr_payload: str = Field(description="What the QR code holds; verifiable offline.")
    issued_at: datetime
    status_changed_at: datetime
    history: list[HistoryOut] = []


class LicenceApplicationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    uscc: str
    licence_type: str
    status: str = Field(description="`submitted`, `approved` or `rejected`.")
    reason: str | None
    licence_number: str | None
    created_at: datetime
    decided_at: datetime | None
    licence: LicenceOut | None = None


class LicenceApplicationList(BaseModel):
    items: list[LicenceApplicationOut]
