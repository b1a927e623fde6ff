"""The ``signing_keys`` table (imported by ``migrations/env.py`` so autogenerate sees it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import CheckConstraint, DateTime, Index, LargeBinary, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tongban_identity.models import Base

KeyState = Literal["next", "active", "retired"]


class SigningKey(Base):
    """One ES256 key pair. The lifecycle is in ``tongban_identity.keys.service``."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10), server_default="ES256")
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # PKCS#8 PEM sealed with the key-encryption key and the kid; erased when the key retires.
    private_key_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("state IN ('next', 'active', 'retired')", name="state"),
        CheckConstraint(
            "(state = 'retired') = (private_key_encrypted IS NULL)",
            name="private_key_until_retired",
        ),
        CheckConstraint("state = 'next' OR activated_at IS NOT NULL", name="activated_at"),
        CheckConstraint("(state = 'retired') = (retired_at IS NOT NULL)", name="retired_at"),
        # At most one active and one next key, whoever rotates.
        Index(
            "uq_signing_keys_state_live",
            "state",
            unique=True,
            postgresql_where=text("state IN ('next', 'active')"),
        ),
    )
