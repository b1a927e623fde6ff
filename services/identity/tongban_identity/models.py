"""Identity's tables."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, LargeBinary, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tongban_kit.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class Person(Base):
    """A natural person. Identifiers are kept sealed; see ``persons.protection``."""

    __tablename__ = "persons"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100))
    node: Mapped[str] = mapped_column(String(6))
    # Nullable only for people signed up by the walking skeleton, before ID numbers existed.
    resident_id_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    resident_id_index: Mapped[str | None] = mapped_column(String(64), unique=True)
    resident_id_masked: Mapped[str | None] = mapped_column(String(18))
    phone_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_masked: Mapped[str | None] = mapped_column(String(11))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    loa: Mapped[str] = mapped_column(String(12), server_default="low")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LegalPerson(Base):
    """A business as identity knows it: built from registration's events, never entered here."""

    __tablename__ = "legal_persons"

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    division_code: Mapped[str] = mapped_column(String(6))
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The legal representative as registration named them; the ID number only sealed.
    representative_name: Mapped[str | None] = mapped_column(String(100))
    representative_id_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    representative_id_masked: Mapped[str | None] = mapped_column(String(18))
