from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tongban_kit.identifiers import InvalidIdentifier, validate_uscc


class ActAsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uscc: str = Field(
        min_length=18, max_length=40, description="GB 32100 USCC of the business to act for."
    )

    @field_validator("uscc")
    @classmethod
    def _valid_uscc(cls, value: str) -> str:
        try:
            return validate_uscc(value)
        except InvalidIdentifier as exc:
            raise ValueError(f"not a valid USCC: {exc.reason}") from None


class ActingTokenResponse(BaseModel):
    access_token: str = Field(description="ES256 JWT naming the business in its `business` claim.")
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 -- a scheme name, not a secret
    expires_in: int = Field(description="Seconds until it expires: never after the caller's own.")
    scope: str
    business: str = Field(description="USCC of the business the token acts for.")


class RepresentedBusiness(BaseModel):
    uscc: str
    name: str
    role: Literal["legal_representative"] = Field(description="Why the person may act for it.")
    since: datetime = Field(description="When identity recorded the delegation.")


class RepresentedBusinesses(BaseModel):
    items: list[RepresentedBusiness]
