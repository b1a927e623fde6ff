"""Data-exchange's tables."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tongban_kit.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class Acknowledgement(Base):
    """A department's acknowledgement of a business event, with its own reference."""

    __tablename__ = "acknowledgements"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    department: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class BusinessRecord(Base):
    """Latest record per business, fed by registration's events (the pull/query read model)."""

    __tablename__ = "business_records"

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    division_code: Mapped[str] = mapped_column(String(6))
    source_event_id: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
