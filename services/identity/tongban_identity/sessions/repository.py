"""All SQL of sign-in: throttle rows, refresh families and tokens, TOTP credentials."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.models import Person
from tongban_identity.sessions.models import (
    LoginThrottle,
    RefreshFamily,
    RefreshToken,
    TotpCredential,
)

# --- throttle -------------------------------------------------------------------------------


async def lock_throttles(
    session: AsyncSession, keys: Sequence[str], *, now: datetime
) -> list[LoginThrottle]:
    """The throttle rows of ``keys``, created if missing, locked until the transaction ends.

    Locked in key order, so two attempts sharing keys cannot deadlock.
    """
    ordered = sorted(set(keys))
    await session.execute(
        insert(LoginThrottle)
        .values([{"key": k, "next_allowed_at": now, "updated_at": now} for k in ordered])
        .on_conflict_do_nothing(index_elements=["key"])
    )
    rows = await session.scalars(
        select(LoginThrottle)
        .where(LoginThrottle.key.in_(ordered))
        .order_by(LoginThrottle.key)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def set_throttle(
    session: AsyncSession, key: str, *, failures: int, next_allowed_at: datetime, now: datetime
) -> None:
    await session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.key == key)
        .values(failures=failures, next_allowed_at=next_allowed_at, updated_at=now)
    )


async def clear_throttle(session: AsyncSession, key: str, *, now: datetime) -> None:
    await session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.key == key)
        .values(failures=0, next_allowed_at=now, updated_at=now)
    )


async def uncount_attempt(
    session: AsyncSession, key: str, *, free_failures: int, now: datetime
) -> None:
    """Take one counted attempt back; lift the back-off if the count falls below the free ones.

    Above them the back-off stays as it was (at most one step stricter than the count alone
    would give): whatever failed meanwhile is not undone.
    """
    remaining = LoginThrottle.failures - 1
    await session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.key == key, LoginThrottle.failures > 0)
        .values(
            failures=remaining,
            next_allowed_at=case(
                (remaining < free_failures, func.least(LoginThrottle.next_allowed_at, now)),
                else_=LoginThrottle.next_allowed_at,
            ),
        )
    )


# --- persons and passwords ------------------------------------------------------------------


async def find_for_login(
    session: AsyncSession, resident_id_index: str
) -> tuple[Person, TotpCredential | None] | None:
    """The person with this blind index and their TOTP credential, in one query."""
    row = (
        await session.execute(
            select(Person, TotpCredential)
            .outerjoin(TotpCredential, TotpCredential.person_id == Person.id)
            .where(Person.resident_id_index == resident_id_index)
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])


async def get_person(session: AsyncSession, person_id: uuid.UUID) -> Person | None:
    return await session.get(Person, person_id)


async def replace_password_hash(
    session: AsyncSession, person_id: uuid.UUID, *, old: str, new: str
) -> None:
    """Store a rehash, unless the password changed meanwhile (then the new one stays)."""
    await session.execute(
        update(Person)
        .where(Person.id == person_id, Person.password_hash == old)
        .values(password_hash=new)
    )


# --- TOTP -----------------------------------------------------------------------------------


async def get_totp(
    session: AsyncSession, person_id: uuid.UUID, *, for_update: bool = False
) -> TotpCredential | None:
    query = select(TotpCredential).where(TotpCredential.person_id == person_id)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query.execution_options(populate_existing=True))


async def put_pending_totp(
    session: AsyncSession, person_id: uuid.UUID, *, secret_sealed: bytes, now: datetime
) -> bool:
    """Store a new unconfirmed secret, replacing an unconfirmed one; False if one is active."""
    result = await session.execute(
        insert(TotpCredential)
        .values(person_id=person_id, secret_sealed=secret_sealed, created_at=now)
        .on_conflict_do_update(
            index_elements=["person_id"],
            set_={"secret_sealed": secret_sealed, "created_at": now, "totp_last_step": None},
            where=TotpCredential.confirmed_at.is_(None),
        )
        .returning(TotpCredential.person_id)
    )
    return result.first() is not None


async def confirm_totp(
    session: AsyncSession, person_id: uuid.UUID, *, step: int, now: datetime
) -> None:
    await session.execute(
        update(TotpCredential)
        .where(TotpCredential.person_id == person_id)
        .values(confirmed_at=now, totp_last_step=step)
    )


async def claim_totp_step(session: AsyncSession, person_id: uuid.UUID, *, step: int) -> bool:
    """Record ``step`` as used; False if it (or a later one) already was, by anyone."""
    result = await session.execute(
        update(TotpCredential)
        .where(
            TotpCredential.person_id == person_id,
            TotpCredential.confirmed_at.is_not(None),
            (TotpCredential.totp_last_step.is_(None)) | (TotpCredential.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .returning(TotpCredential.person_id)
    )
    return result.first() is not None


# --- refresh families and tokens ------------------------------------------------------------


async def add_family(session: AsyncSession, family: RefreshFamily) -> RefreshFamily:
    session.add(family)
    await session.flush()
    return family


async def add_token(session: AsyncSession, token: RefreshToken) -> RefreshToken:
    session.add(token)
    await session.flush()
    return token


async def family_id_of(session: AsyncSession, token_hash: str) -> uuid.UUID | None:
    found: uuid.UUID | None = await session.scalar(
        select(RefreshToken.family_id).where(RefreshToken.token_hash == token_hash)
    )
    return found


async def lock_family(session: AsyncSession, family_id: uuid.UUID) -> RefreshFamily | None:
    """The family, locked until the transaction ends: rotations and revocations of one
    family happen one after the other, so a revocation cannot miss a token rotated meanwhile."""
    return await session.scalar(
        select(RefreshFamily)
        .where(RefreshFamily.id == family_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def get_token(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    """Read afresh (a new statement, so under the family lock it sees what others committed)."""
    return await session.scalar(
        select(RefreshToken)
        .where(RefreshToken.token_hash == token_hash)
        .execution_options(populate_existing=True)
    )


async def mark_used(session: AsyncSession, token_id: uuid.UUID, *, at: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None))
        .values(used_at=at)
    )


async def revoke_family(
    session: AsyncSession, family_id: uuid.UUID, *, at: datetime, reason: str
) -> int:
    """Revoke the family and every token in it; the number of tokens revoked now."""
    await session.execute(
        update(RefreshFamily)
        .where(RefreshFamily.id == family_id, RefreshFamily.revoked_at.is_(None))
        .values(revoked_at=at, revoked_reason=reason)
    )
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=at)
        .returning(RefreshToken.id)
    )
    return len(result.all())


async def family_alive(session: AsyncSession, family_id: uuid.UUID) -> bool:
    """Whether the sign-in exists and has not been revoked (expiry is the tokens' own)."""
    found = await session.scalar(
        select(RefreshFamily.id).where(
            RefreshFamily.id == family_id, RefreshFamily.revoked_at.is_(None)
        )
    )
    return found is not None
