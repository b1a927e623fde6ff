"""``person_scopes`` (imported by ``migrations/env.py``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from tongban_identity.models import Base


class PersonScope(Base):
    """A scope (a role) an operator granted a person on this node, e.g. ``registration:review``
    for a market-regulation officer. Sign-in tokens carry it beside ``login_scope``."""

    __tablename__ = "person_scopes"

    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(200))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    granted_by: Mapped[str] = mapped_column(String(100))

    __table_args__ = (PrimaryKeyConstraint("person_id", "scope", name="pk_person_scopes"),)
