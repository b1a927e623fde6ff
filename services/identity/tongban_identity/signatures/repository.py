"""All SQL of signatures: document keys and signatures, person keys, challenges, persons' LoA."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.models import Person
from tongban_identity.signatures.models import (
    AssuranceChallenge,
    DocumentSignature,
    DocumentSigningKey,
    PersonKey,
)

# pg_advisory_xact_lock key ("tongdocs"): serialises changes of document-key states.
_DOCUMENT_KEY_LOCK = 0x746F6E67646F6373


class KeyAlreadyRegistered(Exception):
    """The thumbprint is registered already (by this person or another; revoked or not)."""


# --- document signing keys ----------------------------------------------------------------


async def lock_document_keys(session: AsyncSession) -> None:
    """Hold the document-key lock until the transaction ends (other replicas wait)."""
    await session.execute(select(func.pg_advisory_xact_lock(_DOCUMENT_KEY_LOCK)))


async def get_active_document_key(session: AsyncSession) -> DocumentSigningKey | None:
    return await session.scalar(
        select(DocumentSigningKey).where(DocumentSigningKey.state == "active")
    )


async def get_document_key(session: AsyncSession, kid: str) -> DocumentSigningKey | None:
    return await session.get(DocumentSigningKey, kid)


async def list_document_keys(session: AsyncSession) -> Sequence[DocumentSigningKey]:
    """Every document key ever made: the active one first, then retired ones, newest first."""
    rows = await session.scalars(
        select(DocumentSigningKey).order_by(
            (DocumentSigningKey.state == "active").desc(), DocumentSigningKey.created_at.desc()
        )
    )
    return rows.all()


async def add_document_key(session: AsyncSession, key: DocumentSigningKey) -> DocumentSigningKey:
    session.add(key)
    await session.flush()
    return key


async def retire_document_key(session: AsyncSession, kid: str, *, at: datetime) -> None:
    """Retire a key and erase its private half: it never signs again, but stays published."""
    await session.execute(
        update(DocumentSigningKey)
        .where(DocumentSigningKey.kid == kid)
        .values(state="retired", retired_at=at, private_key_encrypted=None)
    )


# --- document signatures ------------------------------------------------------------------


async def add_signature(session: AsyncSession, signature: DocumentSignature) -> DocumentSignature:
    session.add(signature)
    await session.flush()
    return signature


async def find_signatures(
    session: AsyncSession, *, document_sha256: str, kid: str
) -> Sequence[DocumentSignature]:
    rows = await session.scalars(
        select(DocumentSignature)
        .where(DocumentSignature.document_sha256 == document_sha256, DocumentSignature.kid == kid)
        .order_by(DocumentSignature.signed_at)
    )
    return rows.all()


# --- person keys --------------------------------------------------------------------------


async def add_person_key(session: AsyncSession, key: PersonKey) -> PersonKey:
    """Insert; a thumbprint seen before surfaces as ``KeyAlreadyRegistered``."""
    try:
        async with session.begin_nested():
            session.add(key)
            await session.flush()
    except IntegrityError as exc:
        if "uq_person_keys_thumbprint" in str(exc.orig):
            raise KeyAlreadyRegistered from exc
        raise
    await session.refresh(key)
    return key


async def count_live_person_keys(session: AsyncSession, person_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(PersonKey)
        .where(PersonKey.person_id == person_id, PersonKey.revoked_at.is_(None))
    )
    return int(count or 0)


async def list_person_keys(session: AsyncSession, person_id: uuid.UUID) -> Sequence[PersonKey]:
    rows = await session.scalars(
        select(PersonKey).where(PersonKey.person_id == person_id).order_by(PersonKey.created_at)
    )
    return rows.all()


async def get_person_key(
    session: AsyncSession, *, person_id: uuid.UUID, key_id: uuid.UUID
) -> PersonKey | None:
    return await session.scalar(
        select(PersonKey).where(PersonKey.id == key_id, PersonKey.person_id == person_id)
    )


async def get_person_key_by_thumbprint(
    session: AsyncSession, *, person_id: uuid.UUID, thumbprint: str
) -> PersonKey | None:
    return await session.scalar(
        select(PersonKey).where(
            PersonKey.thumbprint == thumbprint, PersonKey.person_id == person_id
        )
    )


async def revoke_person_key(session: AsyncSession, key_id: uuid.UUID, *, at: datetime) -> None:
    await session.execute(
        update(PersonKey)
        .where(PersonKey.id == key_id, PersonKey.revoked_at.is_(None))
        .values(revoked_at=at)
    )


# --- challenges ---------------------------------------------------------------------------


async def delete_expired_challenges(session: AsyncSession, *, before: datetime) -> None:
    """Expired challenges are refused anyway; dropping them keeps the table small."""
    await session.execute(delete(AssuranceChallenge).where(AssuranceChallenge.expires_at < before))


async def count_open_challenges(
    session: AsyncSession, person_id: uuid.UUID, *, now: datetime
) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(AssuranceChallenge)
        .where(
            AssuranceChallenge.person_id == person_id,
            AssuranceChallenge.used_at.is_(None),
            AssuranceChallenge.expires_at > now,
        )
    )
    return int(count or 0)


async def add_challenge(session: AsyncSession, challenge: AssuranceChallenge) -> None:
    session.add(challenge)
    await session.flush()


async def lock_challenge(
    session: AsyncSession, *, challenge_id: uuid.UUID, person_id: uuid.UUID
) -> AssuranceChallenge | None:
    """The person's challenge, locked until the transaction ends: two uses cannot both pass."""
    return await session.scalar(
        select(AssuranceChallenge)
        .where(AssuranceChallenge.id == challenge_id, AssuranceChallenge.person_id == person_id)
        .with_for_update()
    )


async def mark_challenge_used(
    session: AsyncSession, challenge_id: uuid.UUID, *, at: datetime
) -> None:
    await session.execute(
        update(AssuranceChallenge).where(AssuranceChallenge.id == challenge_id).values(used_at=at)
    )


# --- persons' level of assurance ----------------------------------------------------------


async def lock_person(session: AsyncSession, person_id: uuid.UUID) -> Person | None:
    """The person, row-locked so concurrent raises of their level serialise."""
    return await session.scalar(select(Person).where(Person.id == person_id).with_for_update())


async def person_exists(session: AsyncSession, person_id: uuid.UUID) -> bool:
    return await session.scalar(select(Person.id).where(Person.id == person_id)) is not None


async def set_loa(session: AsyncSession, person: Person, loa: str) -> None:
    person.loa = loa
    await session.flush()
