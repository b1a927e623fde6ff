"""All SQL on ``signing_keys``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.keys.models import SigningKey

# pg_advisory_xact_lock key ("tongkeys"): serialises every change of key states.
_LOCK_KEY = 0x746F6E676B657973


async def lock(session: AsyncSession) -> None:
    """Hold the key-lifecycle lock until the transaction ends (other replicas wait)."""
    await session.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY)))


async def get_live(session: AsyncSession) -> dict[str, SigningKey]:
    """The ``active`` and ``next`` keys by state (either may be missing)."""
    rows = await session.scalars(select(SigningKey).where(SigningKey.state.in_(("active", "next"))))
    return {key.state: key for key in rows}


async def get_active(session: AsyncSession) -> SigningKey | None:
    return await session.scalar(select(SigningKey).where(SigningKey.state == "active"))


async def list_published(session: AsyncSession, *, retired_after: datetime) -> Sequence[SigningKey]:
    """``next`` and ``active`` keys, and ``retired`` ones retired after ``retired_after``."""
    rows = await session.scalars(
        select(SigningKey)
        .where(
            or_(
                SigningKey.state.in_(("active", "next")),
                SigningKey.retired_at > retired_after,
            )
        )
        .order_by(SigningKey.created_at.desc())
    )
    return rows.all()


async def add(session: AsyncSession, key: SigningKey) -> SigningKey:
    session.add(key)
    await session.flush()
    return key


async def activate(session: AsyncSession, kid: str, *, at: datetime) -> None:
    await session.execute(
        update(SigningKey).where(SigningKey.kid == kid).values(state="active", activated_at=at)
    )


async def retire(session: AsyncSession, kid: str, *, at: datetime) -> None:
    """Retire a key and erase its private half: a retired key never signs again."""
    await session.execute(
        update(SigningKey)
        .where(SigningKey.kid == kid)
        .values(state="retired", retired_at=at, private_key_encrypted=None)
    )
