"""``nodes`` and ``node_enrolment_tokens`` (imported by ``migrations/env.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tongban_identity.models import Base


class Node(Base):
    """A regional node in the central directory."""

    __tablename__ = "nodes"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    gateway_url: Mapped[str] = mapped_column(String(500))
    token_issuer: Mapped[str] = mapped_column(String(500))
    # The node key's public half ({"keys": [...]}); two keys while it rotates.
    jwks: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(12), server_default="active")
    enrolled_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class NodeEnrolmentToken(Base):
    """A one-time token the central operator hands a regional operator: only its hash is kept."""

    __tablename__ = "node_enrolment_tokens"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    code: Mapped[str] = mapped_column(String(6))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
