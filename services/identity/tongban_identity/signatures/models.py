"""Signature tables (imported by ``migrations/env.py`` so autogenerate sees them)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tongban_identity.models import Base


class DocumentSigningKey(Base):
    """The node's ES256 key for documents (e-licences, audit checkpoints), never for tokens.

    ``active`` signs; ``retired`` keys have lost their private half but stay published for
    good, since a document signed years ago must still verify.
    """

    __tablename__ = "document_signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10), server_default="ES256")
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # PKCS#8 PEM sealed with the key-encryption key and the kid; erased when the key retires.
    private_key_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("state IN ('active', 'retired')", name="state"),
        CheckConstraint("kid LIKE 'doc-%'", name="kid_prefix"),
        CheckConstraint(
            "(state = 'retired') = (private_key_encrypted IS NULL)",
            name="private_key_until_retired",
        ),
        CheckConstraint("(state = 'retired') = (retired_at IS NOT NULL)", name="retired_at"),
        Index(
            "uq_document_signing_keys_active",
            "state",
            unique=True,
            postgresql_where=text("state = 'active'"),
        ),
    )


class DocumentSignature(Base):
    """One signature the node made: over which digest, for whom, with which key, when."""

    __tablename__ = "document_signatures"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    document_sha256: Mapped[str] = mapped_column(String(64), index=True)
    document_type: Mapped[str] = mapped_column(String(40))
    kid: Mapped[str] = mapped_column(String(64), ForeignKey("document_signing_keys.kid"))
    jws: Mapped[str] = mapped_column(Text)
    # "metadata" is reserved on declarative classes, hence the attribute name.
    document_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB)
    caller: Mapped[str] = mapped_column(String(255))
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PersonKey(Base):
    """A public key a person registered to sign with (P-256 or Ed25519)."""

    __tablename__ = "person_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    person_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), index=True
    )
    # Normalised public JWK: kty crv x [y] kid alg use (kid = thumbprint).
    jwk: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # RFC 7638; unique across persons and for ever: a revoked key is never registered again.
    thumbprint: Mapped[str] = mapped_column(String(43), unique=True)
    alg: Mapped[str] = mapped_column(String(10))
    # The level of assurance of the sign-in that registered the key: only a key bound at
    # `substantial` or above can prove a person for `high`.
    registered_acr: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AssuranceChallenge(Base):
    """A one-time random value a person signs to prove possession of a registered key."""

    __tablename__ = "assurance_challenges"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    person_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), index=True
    )
    challenge: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
