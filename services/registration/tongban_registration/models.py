"""Registration's tables."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tongban_kit.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class Business(Base):
    __tablename__ = "businesses"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # The serial feeds the USCC's organisation-code body, so codes never repeat.
    serial: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Uniqueness of names is a database constraint, so two concurrent filings cannot both win.
    name_key: Mapped[str] = mapped_column(String(200), unique=True)
    uscc: Mapped[str | None] = mapped_column(String(18), unique=True)
    division_code: Mapped[str] = mapped_column(String(6))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Acknowledgement(Base):
    """A department's acknowledgement of a business (e.g. tax registration done)."""

    __tablename__ = "acknowledgements"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    department: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
