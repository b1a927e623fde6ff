from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tongban_kit.identifiers import InvalidIdentifier, validate_resident_id
from tongban_registration.applications.entity_types import EntityType

Money = Annotated[Decimal, Field(ge=0, max_digits=20, decimal_places=2)]
Share = Annotated[Decimal, Field(gt=0, le=100, max_digits=7, decimal_places=4)]


class _Input(BaseModel):
    # extra="forbid": status, uscc, applicant and the like can never be set by a client.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Capital(_Input):
    amount: Money = Field(
        description='Registered capital, as a decimal string (e.g. "1000000.00").'
    )
    currency: Literal["CNY"] = Field(default="CNY", description="Always CNY.")


class Address(_Input):
    line: str = Field(min_length=1, max_length=300, description="Street address.")
    division_code: str = Field(
        pattern=r"^\d{6}$", description="GB/T 2260 division of the address; inside this node."
    )


class LegalRepresentativeIn(_Input):
    name: str = Field(min_length=1, max_length=100, description="Full name.")
    resident_id: str = Field(
        min_length=15, max_length=18, description="GB 11643 resident ID (stored encrypted)."
    )

    @field_validator("resident_id")
    @classmethod
    def _valid_resident_id(cls, value: str) -> str:
        try:
            return validate_resident_id(value)
        except InvalidIdentifier as exc:
            raise ValueError(exc.reason) from None


class Investor(_Input):
    name: str = Field(min_length=1, max_length=200, description="Investor's name.")
    kind: Literal["natural_person", "legal_person"] = Field(description="Who invests.")
    share: Share = Field(description="Percentage of the capital, decimal; all shares sum to 100.")


def _shares_sum_to_100(investors: list[Investor]) -> list[Investor]:
    total = sum((i.share for i in investors), Decimal(0))
    if total != Decimal(100):
        raise ValueError(f"investors' shares sum to {total}, not exactly 100")
    return investors


class ApplicationCreate(_Input):
    name: str = Field(min_length=2, max_length=200, description="Proposed registered name.")
    entity_type: EntityType
    registered_capital: Capital
    address: Address
    business_scope: str = Field(min_length=1, max_length=2000)
    legal_representative: LegalRepresentativeIn
    investors: list[Investor] = Field(min_length=1, max_length=200)

    @field_validator("investors")
    @classmethod
    def _shares(cls, value: list[Investor]) -> list[Investor]:
        return _shares_sum_to_100(value)


class ApplicationPatch(_Input):
    """Any subset of the draft's fields; the others stay as they are."""

    name: str | None = Field(default=None, min_length=2, max_length=200)
    entity_type: EntityType | None = None
    registered_capital: Capital | None = None
    address: Address | None = None
    business_scope: str | None = Field(default=None, min_length=1, max_length=2000)
    legal_representative: LegalRepresentativeIn | None = None
    investors: list[Investor] | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("investors")
    @classmethod
    def _shares(cls, value: list[Investor] | None) -> list[Investor] | None:
        return None if value is None else _shares_sum_to_100(value)

    @model_validator(mode="after")
    def _no_nulls(self) -> ApplicationPatch:
        for field in self.model_fields_set:
            if getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self


class SubmitRequest(_Input):
    signature: str | None = Field(
        default=None,
        max_length=2048,
        description="Optional detached JWS (RFC 7797, `b64: false`) of `document_sha256` by the "
        "applicant's registered key; kept with the submission.",
    )


class Problem(_Input):
    field: str = Field(
        min_length=1, max_length=100, description="The field, e.g. `business_scope`."
    )
    problem: str = Field(min_length=1, max_length=1000, description="What to correct.")


class LegalRepresentativeOut(BaseModel):
    name: str
    resident_id_masked: str = Field(
        description="The resident ID with birth date and serial hidden."
    )


class TransitionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    action: str
    from_status: str | None
    to_status: str
    actor_role: str
    reason: str | None
    problems: list[Problem] | None
    at: datetime


class AcknowledgementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    department: str
    reference: str
    recorded_at: datetime


class ApplicationOut(BaseModel):
    id: uuid.UUID
    status: str
    allowed_actions: list[str]
    name: str
    entity_type: EntityType
    registered_capital: Capital
    address: Address
    business_scope: str
    legal_representative: LegalRepresentativeOut
    investors: list[Investor]
    name_reserved_until: datetime | None = Field(
        description="When the name reservation lapses (null once the business is registered)."
    )
    document_sha256: str = Field(
        description="SHA-256 of the application's content: while a draft (or returned), of the "
        "content now — what the applicant signs before submitting; afterwards, as submitted."
    )
    signature: str | None
    signature_kid: str | None = Field(
        description="Thumbprint of the applicant's key identity confirmed the signature with."
    )
    submitted_at: datetime | None
    due_on: date | None = Field(description="Promised decision date (statutory clock).")
    decided_at: datetime | None
    problems: list[Problem] | None = Field(description="What to correct, when returned.")
    uscc: str | None
    created_at: datetime
    history: list[TransitionOut] = []
    acknowledgements: list[AcknowledgementOut] = []


class ApplicationList(BaseModel):
    items: list[ApplicationOut]
