from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DiscoveryDocument(BaseModel):
    """OpenID Provider metadata (OpenID Connect Discovery 1.0 §3, RFC 8414), what exists."""

    issuer: str = Field(description="The `iss` of every token this node issues.")
    jwks_uri: str = Field(description="Where the public token-signing keys are published.")
    token_endpoint: str = Field(description="OAuth 2 token endpoint (form-encoded, RFC 6749).")
    token_endpoint_auth_methods_supported: list[str] = Field(
        description="How clients authenticate at the token endpoint: a JWT signed with a "
        "registered key (RFC 7523)."
    )
    token_endpoint_auth_signing_alg_values_supported: list[str] = Field(
        description="Algorithms a client assertion may be signed with."
    )
    revocation_endpoint: str = Field(description="Refresh-token revocation (RFC 7009).")
    revocation_endpoint_auth_methods_supported: list[str] = Field(
        description="`none`: whoever holds a refresh token may revoke it."
    )
    introspection_endpoint: str = Field(description="Access-token introspection (RFC 7662).")
    introspection_endpoint_auth_methods_supported: list[str] = Field(
        description="Client authentication at introspection; a bearer token with the scope "
        "`identity:introspect` is accepted too."
    )
    introspection_endpoint_auth_signing_alg_values_supported: list[str]
    grant_types_supported: list[str] = Field(description="Grants the token endpoint accepts.")
    subject_types_supported: list[str] = Field(
        description="How `sub` identifies a person: `public` in tokens; `pairwise` pseudonyms "
        "are what departments know persons by."
    )
    id_token_signing_alg_values_supported: list[str]
    acr_values_supported: list[str] = Field(
        description="Levels of assurance, lowest first: `low` self-asserted, `substantial` "
        "verified against a department, `high` proof of possession of a registered key."
    )
    claims_supported: list[str] = Field(
        description="Claims an access token may carry: `department`, `department_name` and "
        "`client_id` in a department's token, `business` (a USCC) when a person acts for a "
        "business, `sid` naming the sign-in."
    )
    tongban_document_jwks_uri: str = Field(
        description="Tongban extension: the node's document-signing keys (e-licences, audit "
        "checkpoints), a key set separate from the token keys."
    )


class IntrospectionResponse(BaseModel):
    """RFC 7662 §2.2. Inactive: `active` alone. Active: the token's claims as well."""

    model_config = ConfigDict(extra="allow")

    active: bool
    token_type: str | None = Field(default=None, description="`Bearer` when active.")
    scope: str | None = None
    sub: str | None = None
    exp: int | None = None
