"""Pairwise subjects: the pseudonym each department knows a person by, and back.

Which department may learn the real identifier behind a pseudonym is not decided here: a grant
in data-exchange will decide it. Until then only holders of ``identity:pairwise:resolve`` (a
platform service acting under such a grant, or an operator) resolve pseudonyms.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.departments import repository as departments_repository
from tongban_identity.pairwise import repository
from tongban_identity.pairwise.derivation import Pseudonyms
from tongban_identity.persons import repository as persons_repository
from tongban_kit.errors import NotFound


async def pseudonym_for(
    session: AsyncSession, *, person_id: uuid.UUID, department: str, pseudonyms: Pseudonyms
) -> str:
    """The pseudonym ``department`` knows the person by, made and stored on first use.

    Stable: once stored it is returned as stored, even after the pairwise key changes (only
    pairs not yet stored would be derived under the new key). The department must have been
    enrolled at this node (enabled or not), the person must exist.
    """
    stored = await repository.pseudonym_of(session, department=department, person_id=person_id)
    if stored is not None:
        return stored
    if await persons_repository.get(session, person_id) is None:
        raise NotFound(f"no person {person_id}")
    if not await departments_repository.code_known(session, department):
        raise NotFound(f"no department {department!r} is enrolled at this node")
    return await repository.keep(
        session,
        department=department,
        person_id=person_id,
        pseudonym=pseudonyms.derive(department=department, person_id=person_id),
    )


async def person_for(session: AsyncSession, *, department: str, pseudonym: str) -> uuid.UUID:
    """The person behind a department's pseudonym; ``NotFound`` if it was never handed out."""
    person_id = await repository.person_of(session, department=department, pseudonym=pseudonym)
    if person_id is None:
        raise NotFound(f"department {department!r} was given no such pseudonym")
    return person_id
