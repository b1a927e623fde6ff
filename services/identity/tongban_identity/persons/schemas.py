from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tongban_kit.crypto import MAX_PASSWORD_LENGTH
from tongban_kit.identifiers import InvalidIdentifier, validate_resident_id


class PersonCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    resident_id: str = Field(
        min_length=15,
        max_length=18,
        description="GB 11643 resident identity number (18 characters, or a 15-digit legacy "
        "number, converted). Stored sealed; never returned unmasked.",
    )
    name: str = Field(min_length=1, max_length=100, description="The person's name.")
    phone: str = Field(pattern=r"^1[3-9]\d{9}$", description="Mainland mobile number.")
    password: str = Field(
        min_length=10,
        max_length=MAX_PASSWORD_LENGTH,
        description="At least 10 characters; stored as an argon2id hash.",
        repr=False,
    )

    @field_validator("resident_id")
    @classmethod
    def _valid_resident_id(cls, value: str) -> str:
        try:
            return validate_resident_id(value)
        except InvalidIdentifier as exc:  # its reason never quotes the number
            raise ValueError(f"not a valid resident ID number: {exc.reason}") from None


class PersonOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    node: str
    resident_id_masked: str | None = Field(description="e.g. 440305********123X")
    phone_masked: str | None = Field(description="e.g. 138****5678")
    loa: str = Field(description="Level of assurance: low, substantial or high.")
    created_at: datetime
