from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tongban_kit.crypto import MAX_PASSWORD_LENGTH
from tongban_kit.identifiers import InvalidIdentifier, validate_resident_id

#: An opaque refresh token is 43 characters; anything much longer is not one of ours.
MAX_REFRESH_TOKEN_LENGTH = 200


class LoginRequest(BaseModel):
    # Stripped like sign-up strips, so a password is compared in the form it was stored.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    resident_id: str = Field(
        min_length=15, max_length=18, description="GB 11643 resident identity number."
    )
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH, repr=False)
    totp: str | None = Field(
        default=None,
        max_length=16,
        repr=False,
        description="The current 6-digit code of the person's authenticator app; required "
        "once TOTP is enabled, ignored otherwise.",
    )

    @field_validator("resident_id")
    @classmethod
    def _canonical_resident_id(cls, value: str) -> str:
        # The canonical form is what the blind index was computed from at sign-up.
        try:
            return validate_resident_id(value)
        except InvalidIdentifier as exc:  # its reason never quotes the number
            raise ValueError(f"not a valid resident ID number: {exc.reason}") from None


class TokenResponse(BaseModel):
    """RFC 6749 §5.1 access token response."""

    access_token: str = Field(description="ES256 JWT (RFC 9068), for `Authorization: Bearer`.")
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 -- a scheme name, not a secret
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str = Field(
        description="Opaque; exchange it once at `/oauth/token` for a new pair. Reusing a spent "
        "one (after a few seconds' grace) ends the whole sign-in."
    )
    scope: str = Field(description="Granted scopes, space separated.")


class LogoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(
        min_length=1,
        max_length=MAX_REFRESH_TOKEN_LENGTH,
        repr=False,
        description="The refresh token of the sign-in to end.",
    )


class TotpEnrolment(BaseModel):
    secret: str = Field(description="Base32 secret, for typing into an authenticator app.")
    provisioning_uri: str = Field(description="`otpauth://totp/...`, to show as a QR code.")


class TotpConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=6, max_length=16, repr=False, description="A current code.")


class TotpStatus(BaseModel):
    enabled: bool
    confirmed_at: datetime | None
