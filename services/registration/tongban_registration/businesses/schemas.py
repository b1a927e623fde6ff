from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from tongban_registration.applications.schemas import AcknowledgementOut, Address, Capital


class BusinessOut(BaseModel):
    """A business as the public register shows it: public fields only."""

    uscc: str
    name: str
    entity_type: str
    status: str = Field(description="`active`, `revoked`, `deregistering` or `deregistered`.")
    status_changed_at: datetime | None
    status_reason: str | None
    objection_deadline: datetime | None = Field(
        description="While `deregistering`: the end of the public notice (objections until then)."
    )
    registered_capital: Capital
    address: Address
    business_scope: str
    legal_representative: str = Field(description="Masked: the family name and asterisks.")
    registered_at: datetime
    acknowledgements: list[AcknowledgementOut] = Field(
        default=[], description="Departments that opened their records for this business."
    )


class BusinessList(BaseModel):
    items: list[BusinessOut]


class LicenceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    uscc: str
    document: dict[str, object] = Field(description="The licence's content, as signed.")
    document_sha256: str
    jws: str = Field(description="The node's detached JWS (RFC 7797) of `document_sha256`.")
    qr_payload: str = Field(description="What the QR code holds; verifiable offline.")
    issued_at: datetime


class VerificationOut(BaseModel):
    valid: bool = Field(description="The payload is a licence this node signed, unaltered.")
    reason: str | None = None
    kind: str = Field(
        default="business-licence",
        description="`business-licence` or `accreditation-licence` (证照分离).",
    )
    uscc: str | None = None
    name: str | None = None
    status: str | None = Field(
        default=None,
        description="Now: the business's status (`active`, `revoked`, …) for a business "
        "licence; the licence's (`active`, `suspended`, `revoked`, `expired`) otherwise.",
    )
    status_changed_at: datetime | None = None
    licence_number: str | None = Field(default=None, description="Accreditation licences.")
    licence_type: str | None = None
    licence_name: str | None = None
    valid_from: date | None = None
    valid_until: date | None = None
