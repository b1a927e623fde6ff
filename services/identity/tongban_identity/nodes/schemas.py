"""What a regional node sends to enrol, and what it gets back."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tongban_identity.departments.client_keys import normalise_jwks

_URL = r"^https?://[^\s?#@]+$"


class NodeEnrolment(BaseModel):
    """``POST /v1/nodes/enrolments``: the one-time token and the node's own description."""

    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, Field(min_length=16, max_length=200)]
    code: Annotated[str, Field(pattern=r"^\d{6}$", description="GB/T 2260 division code")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    gateway_url: Annotated[str, Field(pattern=_URL, max_length=500)]
    token_issuer: Annotated[str, Field(pattern=_URL, max_length=500)]
    jwks: dict[str, Any] = Field(description="The node key's public half (a JWKS, P-256).")

    @field_validator("gateway_url", "token_issuer")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("jwks")
    @classmethod
    def _public_p256(cls, value: dict[str, Any]) -> dict[str, Any]:
        keys = normalise_jwks(value)
        if any(key.get("crv") != "P-256" for key in keys["keys"]):
            raise ValueError("a node key is P-256 (ES256)")
        return keys


class NodeOut(BaseModel):
    """One directory entry."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    gateway_url: str
    token_issuer: str
    jwks: dict[str, Any]
    status: str


class EnrolmentOut(BaseModel):
    """The node as the directory now lists it, and the key the directory is signed with (the
    enrolling node keeps it as its trust anchor)."""

    node: NodeOut
    directory_jwks: dict[str, Any]
