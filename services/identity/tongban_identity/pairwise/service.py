"""Pairwise subjects: the pseudonym each department knows a person by, and back.

Which department may learn the real identifier behind a pseudonym is not decided here: a grant
in data-exchange will decide it. Until then only holders of ``identity:pairwise:resolve`` (a
platform service acting under such a grant, or an operator) resolve pseudonyms.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.departments import repository as departments_repository
from tongban_identity.models import Person
from tongban_identity.pairwise import repository
from tongban_identity.pairwise.derivation import Pseudonyms
from tongban_identity.persons import repository as persons_repository
from tongban_identity.persons.protection import PersonalData
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
    person = await persons_repository.get(session, person_id)
    if person is None:
        raise NotFound(f"no person {person_id}")
    await _enrolled(session, department)
    return await repository.keep(
        session,
        department=department,
        person_id=person_id,
        pseudonym=_derived(person, department, pseudonyms),
    )


def _derived(person: Person, department: str, pseudonyms: Pseudonyms) -> str:
    if person.resident_id_index is None:
        return pseudonyms.derive(department=department, person_id=person.id)
    return pseudonyms.derive_for_resident(
        department=department, resident_id_index=person.resident_id_index
    )


async def _enrolled(session: AsyncSession, department: str) -> None:
    if not await departments_repository.code_known(session, department):
        raise NotFound(f"no department {department!r} is enrolled at this node")


async def pseudonym_for_resident(
    session: AsyncSession,
    *,
    resident_id: str,
    department: str,
    pseudonyms: Pseudonyms,
    personal_data: PersonalData,
) -> str:
    """The pseudonym ``department`` knows (or will know) the holder of ``resident_id`` by.

    A registered person gets exactly what ``pseudonym_for`` gives the department (stored on
    first use, so the two always agree). Someone not registered gets the pseudonym derived from
    their resident ID's blind index, which is what ``pseudonym_for`` will derive and store for
    them once they sign up: the same value, nothing stored meanwhile (identity keeps no row for
    people it does not know). Stable as long as the pairwise key is; a pseudonym already stored
    outlives a new key, an unregistered person's does not. Cannot be resolved back until the
    person is registered and the pseudonym stored.
    """
    await _enrolled(session, department)
    return await _pseudonym_for_resident(
        session,
        resident_id=resident_id,
        department=department,
        pseudonyms=pseudonyms,
        personal_data=personal_data,
    )


async def pseudonyms_for_residents(
    session: AsyncSession,
    items: Sequence[tuple[str, str]],
    *,
    pseudonyms: Pseudonyms,
    personal_data: PersonalData,
) -> list[str | None]:
    """``pseudonym_for_resident`` for each ``(department, resident_id)``, in order; None where
    the department was never enrolled at this node (where the single answer is ``NotFound``).
    Each department's enrolment is looked up once."""
    enrolled = {
        department
        for department in dict.fromkeys(department for department, _ in items)
        if await departments_repository.code_known(session, department)
    }
    answers: list[str | None] = []
    for department, resident_id in items:
        if department not in enrolled:
            answers.append(None)
            continue
        answers.append(
            await _pseudonym_for_resident(
                session,
                resident_id=resident_id,
                department=department,
                pseudonyms=pseudonyms,
                personal_data=personal_data,
            )
        )
    return answers


async def _pseudonym_for_resident(
    session: AsyncSession,
    *,
    resident_id: str,
    department: str,
    pseudonyms: Pseudonyms,
    personal_data: PersonalData,
) -> str:
    """``pseudonym_for_resident`` for a department known to be enrolled."""
    index = personal_data.resident_id_index(resident_id)
    person = await persons_repository.by_resident_index(session, index)
    if person is not None:
        return await pseudonym_for(
            session, person_id=person.id, department=department, pseudonyms=pseudonyms
        )
    return pseudonyms.derive_for_resident(department=department, resident_id_index=index)


async def person_for(session: AsyncSession, *, department: str, pseudonym: str) -> uuid.UUID:
    """The person behind a department's pseudonym; ``NotFound`` if it was never handed out."""
    person_id = await repository.person_of(session, department=department, pseudonym=pseudonym)
    if person_id is None:
        raise NotFound(f"department {department!r} was given no such pseudonym")
    return person_id
