"""``pairwise_subjects`` (imported by ``migrations/env.py``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, PrimaryKeyConstraint, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from tongban_identity.models import Base


class PairwiseSubject(Base):
    """The pseudonym one department knows a person by, kept so it can be resolved back."""

    __tablename__ = "pairwise_subjects"

    department: Mapped[str] = mapped_column(String(32))
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    pseudonym: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        PrimaryKeyConstraint("department", "person_id", name="pk_pairwise_subjects"),
        UniqueConstraint("department", "pseudonym"),
    )
