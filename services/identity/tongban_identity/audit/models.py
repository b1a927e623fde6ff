"""The ``audit_events`` table (imported by ``migrations/env.py`` so autogenerate sees it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tongban_identity.models import Base


class AuditEvent(Base):
    """One security-relevant event. Never holds a resident ID, a password or a token."""

    __tablename__ = "audit_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    type: Mapped[str] = mapped_column(String(40))
    # The person concerned; no foreign key: the log outlives what it speaks of.
    subject: Mapped[uuid.UUID | None]
    actor: Mapped[str] = mapped_column(String(100))
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB)

    __table_args__ = (
        Index("ix_audit_events_subject_at", "subject", "at"),
        Index("ix_audit_events_at", "at"),
    )
