from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tongban_identity.signatures.jws import MAX_JWS_CHARS

Sha256Hex = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-fA-F]{64}$", to_lower=True),
    Field(description="SHA-256 of the document's bytes, 64 hex digits (read as lowercase)."),
]
CompactJws = Annotated[
    str,
    StringConstraints(min_length=5, max_length=MAX_JWS_CHARS),
    Field(description='Compact detached JWS with `"b64": false` (RFC 7797): `header..signature`.'),
]
MetadataValue = Annotated[str, StringConstraints(max_length=200)] | int | bool | None

MAX_METADATA_ENTRIES = 20


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- the node's document signatures -------------------------------------------------------


class SignatureRequest(_Input):
    document_sha256: Sha256Hex
    document_type: str = Field(
        pattern=r"^[a-z][a-z0-9-]{1,39}$",
        description="What the document is, e.g. `e-licence`, `audit-checkpoint`.",
    )
    metadata: dict[
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,40}$")], MetadataValue
    ] = Field(
        default_factory=dict,
        max_length=MAX_METADATA_ENTRIES,
        description="Up to 20 flat entries the node records with the signature (not signed, "
        'never published), e.g. `{"licence_no": "…"}`. No personal data.',
    )


class SignatureOut(BaseModel):
    id: uuid.UUID = Field(description="The node's record of this signature.")
    document_sha256: str
    document_type: str
    kid: str = Field(description="The document key that signed (`doc-…`).")
    jws: str = Field(
        description="Detached JWS: `BASE64URL(header)..BASE64URL(signature)`; the signing "
        'input is `BASE64URL(header) + "." + document_sha256`.'
    )
    signed_at: datetime


class VerifyRequest(_Input):
    document_sha256: Sha256Hex
    jws: CompactJws


class VerifyOut(BaseModel):
    valid: bool = Field(description="Whether this node's document key signed exactly this digest.")
    kid: str | None = Field(description="The key the JWS names, if it names one.")
    signed_at: datetime | None = Field(
        default=None, description="When the node made the signature (its own record)."
    )
    reason: str | None = Field(default=None, description="Why it is not valid.")


class DocumentJwk(BaseModel):
    """One public document-signing key (RFC 7517, RFC 7518 §6.2)."""

    model_config = ConfigDict(extra="ignore")

    kid: str = Field(description="`doc-` followed by the key's RFC 7638 thumbprint.")
    kty: Literal["EC"] = "EC"
    crv: Literal["P-256"] = "P-256"
    x: str = Field(description="Public point x, base64url.")
    y: str = Field(description="Public point y, base64url.")
    alg: Literal["ES256"] = "ES256"
    use: Literal["sig"] = "sig"


class DocumentJwkSet(BaseModel):
    keys: list[DocumentJwk] = Field(
        description="Every document key the node has had, the active one first; none is ever "
        "withdrawn."
    )


# --- persons' keys and signatures ---------------------------------------------------------


class PersonKeyCreate(_Input):
    jwk: dict[str, Any] = Field(
        description='A public JWK: `{"kty":"EC","crv":"P-256","x","y"}` or '
        '`{"kty":"OKP","crv":"Ed25519","x"}`; optional `alg`, `use` (`sig`), `kid` '
        "(ignored: the kid is the thumbprint). Private members are refused.",
        max_length=12,
    )


class PersonKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kid: str = Field(
        validation_alias="thumbprint",
        description="RFC 7638 thumbprint: the `kid` to put in signatures made with this key.",
    )
    alg: str = Field(description="ES256 (P-256) or EdDSA (Ed25519).")
    jwk: dict[str, Any] = Field(description="The stored public JWK.")
    created_at: datetime
    revoked_at: datetime | None


class PersonKeyList(BaseModel):
    keys: list[PersonKeyOut]


class PersonVerifyRequest(_Input):
    person_id: uuid.UUID
    document_sha256: Sha256Hex
    jws: CompactJws


class PersonVerifyOut(BaseModel):
    valid: bool
    key_id: uuid.UUID | None = Field(default=None, description="The person's key that signed.")
    kid: str | None = Field(default=None, description="Its thumbprint.")
    reason: str | None = Field(default=None, description="Why it is not valid.")


# --- levels of assurance ------------------------------------------------------------------


class ChallengeOut(BaseModel):
    challenge_id: uuid.UUID
    challenge: str = Field(
        description="Sign this string as the unencoded payload of a detached JWS with "
        '`"typ": "tongban-challenge+jws"` and `kid` your key\'s thumbprint.'
    )
    expires_at: datetime


class HighAssuranceRequest(_Input):
    challenge_id: uuid.UUID
    jws: CompactJws


class SubstantialAssuranceRequest(_Input):
    source: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]{1,39}$",
        description="The authoritative record the person was checked against, e.g. "
        "`household-register`.",
    )


class AssuranceOut(BaseModel):
    person_id: uuid.UUID
    loa: str = Field(description="The person's level of assurance now.")
    previous_loa: str = Field(description="The level before this request.")
    raised: bool = Field(description="False if the person was at this level or above already.")
