from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PublicJwk(BaseModel):
    """One public signing key (RFC 7517, RFC 7518 §6.2)."""

    model_config = ConfigDict(extra="ignore")

    kid: str = Field(description="Key id: the key's RFC 7638 thumbprint.")
    kty: Literal["EC"] = "EC"
    crv: Literal["P-256"] = "P-256"
    x: str = Field(description="Public point x, base64url.")
    y: str = Field(description="Public point y, base64url.")
    alg: Literal["ES256"] = "ES256"
    use: Literal["sig"] = "sig"


class JwkSet(BaseModel):
    keys: list[PublicJwk] = Field(
        description="Keys that sign now, will sign next, or have "
        "signed tokens that may not have expired yet."
    )
