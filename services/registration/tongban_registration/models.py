"""Registration's tables."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tongban_kit.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class Application(Base):
    """A business registration application, from draft to decision."""

    __tablename__ = "applications"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    applicant: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    name: Mapped[str] = mapped_column(String(200))
    entity_type: Mapped[str] = mapped_column(String(40))
    registered_capital: Mapped[Decimal] = mapped_column(Numeric(20, 2))
    address: Mapped[str] = mapped_column(String(300))
    division_code: Mapped[str] = mapped_column(String(6))
    business_scope: Mapped[str] = mapped_column(Text)
    legal_representative_name: Mapped[str] = mapped_column(String(100))
    # Sealed with the FieldCipher; only the masked form ever leaves the service in a response.
    legal_representative_id: Mapped[bytes] = mapped_column(LargeBinary)
    investors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    signature: Mapped[str | None] = mapped_column(Text)
    # The applicant's key (RFC 7638 thumbprint) identity confirmed the signature with; NULL
    # when no signature was given or the node had no identity client to check it.
    signature_kid: Mapped[str | None] = mapped_column(String(64))
    document_sha256: Mapped[str | None] = mapped_column(String(64))
    # The exact bytes submitted (and signed, when signed), sealed: they hold the resident ID.
    submitted_document: Mapped[bytes | None] = mapped_column(LargeBinary)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_on: Mapped[date | None] = mapped_column(Date)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reviewer: Mapped[str | None] = mapped_column(String(128))
    problems: Mapped[list[dict[str, str]] | None] = mapped_column(JSONB)
    uscc: Mapped[str | None] = mapped_column(String(18))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Transition(Base):
    """One step of an application's history. Append-only: a trigger refuses UPDATE and DELETE."""

    __tablename__ = "application_transitions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    application_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("applications.id"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(128))
    actor_role: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    problems: Mapped[list[dict[str, str]] | None] = mapped_column(JSONB)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class NameReservation(Base):
    """A name held for an application or a registered business.

    At most one live reservation per normalised name, by a partial unique index: concurrent
    applicants race on the index, never on a check-then-insert.
    """

    __tablename__ = "name_reservations"
    __table_args__ = (
        Index(
            "uq_name_reservations_live_name_key",
            "name_key",
            unique=True,
            postgresql_where=text("released_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    application_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("applications.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200))
    # NULL once the business is registered: the name is then held for good.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Business(Base):
    """The register: one row per registered business."""

    __tablename__ = "businesses"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    application_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("applications.id"), unique=True)
    owner: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200), index=True)
    entity_type: Mapped[str] = mapped_column(String(40))
    registered_capital: Mapped[Decimal] = mapped_column(Numeric(20, 2))
    address: Mapped[str] = mapped_column(String(300))
    division_code: Mapped[str] = mapped_column(String(6))
    business_scope: Mapped[str] = mapped_column(Text)
    legal_representative_name: Mapped[str] = mapped_column(String(100))
    legal_representative_id: Mapped[bytes] = mapped_column(LargeBinary)
    investors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status_reason: Mapped[str | None] = mapped_column(Text)
    # Simplified deregistration: the public notice's end, and an objection that stopped it.
    objection_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    objection: Mapped[str | None] = mapped_column(Text)


class ChangeFiling(Base):
    """A registered business's request to change its name, address, scope or legal
    representative; reviewed by an officer. At most one open filing per business."""

    __tablename__ = "change_filings"
    __table_args__ = (
        Index(
            "uq_change_filings_open_business",
            "business_id",
            unique=True,
            postgresql_where=text("status = 'submitted'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id"), index=True)
    uscc: Mapped[str] = mapped_column(String(18))
    applicant: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(20))
    # Only the fields that change; a new legal representative's resident ID sealed like the
    # register's, under "legal_representative_id" as the base64 of the sealed token.
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB)
    name_reservation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("name_reservations.id")
    )
    reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BusinessLicence(Base):
    """The electronic business licence: a document, the node's signature of it, the QR text."""

    __tablename__ = "business_licences"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id"), unique=True)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSONB)
    document_sha256: Mapped[str] = mapped_column(String(64))
    jws: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class IdempotentRequest(Base):
    """A caller's Idempotency-Key and the answer it got, replayed on a repeat."""

    __tablename__ = "idempotency_keys"

    caller: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    operation: Mapped[str] = mapped_column(String(100))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[Any | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Acknowledgement(Base):
    """A department's acknowledgement of a business (e.g. tax registration done)."""

    __tablename__ = "acknowledgements"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    department: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LicenceApplication(Base):
    """A business's application for an accreditation licence (证照分离)."""

    __tablename__ = "licence_applications"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id"), index=True)
    uscc: Mapped[str] = mapped_column(String(18))
    licence_type: Mapped[str] = mapped_column(String(40))
    applicant: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    licence_number: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AccreditationLicence(Base):
    """An issued accreditation licence: its current signed document and status.

    At most one live (not revoked, not expired) licence per business and type, by a partial
    unique index.
    """

    __tablename__ = "accreditation_licences"
    __table_args__ = (
        Index(
            "uq_accreditation_licences_live",
            "business_id",
            "licence_type",
            unique=True,
            postgresql_where=text("status IN ('active', 'suspended')"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id"), index=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    licence_type: Mapped[str] = mapped_column(String(40))
    application_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("licence_applications.id"))
    status: Mapped[str] = mapped_column(String(20))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    document: Mapped[dict[str, Any]] = mapped_column(JSONB)
    document_sha256: Mapped[str] = mapped_column(String(64))
    jws: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LicenceHistory(Base):
    """One step of a licence's life. Append-only: a trigger refuses UPDATE and DELETE."""

    __tablename__ = "licence_history"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    licence_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accreditation_licences.id"), index=True
    )
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)
    valid_until: Mapped[date] = mapped_column(Date)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ApplicationDocument(Base):
    """A file uploaded to an application (PDF, PNG or JPEG), kept in ``document_chunks``.

    Its SHA-256 is part of the application's content the applicant signs.
    """

    __tablename__ = "application_documents"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    application_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("applications.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DocumentChunk(Base):
    """One piece of an uploaded file, in order: a file is never held whole in memory."""

    __tablename__ = "document_chunks"

    document_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("application_documents.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
