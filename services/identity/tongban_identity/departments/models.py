"""``department_clients`` and ``client_assertion_jtis`` (imported by ``migrations/env.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tongban_identity.models import Base

CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{1,31}$"


class DepartmentClient(Base):
    """A department enrolled as an OAuth client of this node (client credentials only)."""

    __tablename__ = "department_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    node: Mapped[str] = mapped_column(String(6))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(200)))
    # Public keys only ({"keys": [...]}, normalised by departments.client_keys).
    jwks: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(f"code ~ '{CODE_PATTERN}'", name="code"),
        # One enabled client per department: the department's keys rotate inside its JWKS.
        Index(
            "uq_department_clients_code_enabled",
            "code",
            unique=True,
            postgresql_where=text("disabled_at IS NULL"),
        ),
    )


class ClientAssertionJti(Base):
    """A client assertion already used, kept until it expires: the key refuses a replay."""

    __tablename__ = "client_assertion_jtis"

    client_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("department_clients.client_id", ondelete="CASCADE")
    )
    jti: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        PrimaryKeyConstraint("client_id", "jti", name="pk_client_assertion_jtis"),
        Index("ix_client_assertion_jtis_expires_at", "expires_at"),
    )
