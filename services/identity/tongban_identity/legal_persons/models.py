"""``delegations`` (imported by ``migrations/env.py``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from tongban_identity.models import Base

LEGAL_REPRESENTATIVE = "legal_representative"


class Delegation(Base):
    """A person may act for a business: who (by resident-ID blind index), for which business,
    why (``source``) and since when.

    The person is named by the blind index, not by a person id: a business's representative
    may sign up after the business was registered, and is then found by the same index.
    ``ended_at`` is set when the delegation stops (registration names another representative);
    the row stays, as the record of who could act when.
    """

    __tablename__ = "delegations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    uscc: Mapped[str] = mapped_column(ForeignKey("legal_persons.uscc", ondelete="CASCADE"))
    person_index: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(30))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(f"source IN ('{LEGAL_REPRESENTATIVE}')", name="source"),
        Index("ix_delegations_person_index", "person_index"),
        Index(
            "uq_delegations_current",
            "uscc",
            "person_index",
            "source",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
        ),
    )
