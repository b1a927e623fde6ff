from __future__ import annotations

from pydantic import BaseModel, Field


class DiscoveryDocument(BaseModel):
    """OpenID Provider metadata (OpenID Connect Discovery 1.0 §3), only what exists so far."""

    issuer: str = Field(description="The `iss` of every token this node issues.")
    jwks_uri: str = Field(description="Where the public signing keys are published.")
    token_endpoint: str = Field(description="OAuth 2 token endpoint (form-encoded, RFC 6749).")
    revocation_endpoint: str = Field(description="Refresh-token revocation (RFC 7009).")
    grant_types_supported: list[str] = Field(description="Grants the token endpoint accepts.")
    subject_types_supported: list[str] = Field(description="How `sub` identifies a person.")
    id_token_signing_alg_values_supported: list[str]
    acr_values_supported: list[str] = Field(
        description="Levels of assurance, lowest first: `low` self-asserted, `substantial` "
        "verified against a department, `high` verified in person or by certificate."
    )
    claims_supported: list[str] = Field(description="Claims an access token carries.")
