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
from tongban_identity.pairwise import repository
from tongban_identity.pairwise.derivation import Pseudonyms
from tongban_identity.persons import repository as persons_repository
from tongban_identity.persons.protection import PersonalData
from tongban_kit.errors import NotFound

_NOT_ENROLLED = "no department {!r} is enrolled at this node"


async def pseudonym_for(
    session: AsyncSession, *, person_id: uuid.UUID, department: str, pseudonyms: Pseudonyms
) -> str:
    """The pseudonym ``department`` knows the person by, made and stored on first use.

    Stable: once stored it is returned as stored, even after the pairwise key changes (only
    pairs not yet stored would be derived under the new key). The department must have been
    enrolled at this node (enabled or not), the person must exist.
    """
    pair = (department, person_id)
    stored = await repository.pseudonyms_of(session, [pair])
    if pair in stored:
        return stored[pair]
    person = await persons_repository.get(session, person_id)
    if person is None:
        raise NotFound(f"no person {person_id}")
    if not await departments_repository.codes_known(session, [department]):
        raise NotFound(_NOT_ENROLLED.format(department))
    if person.resident_id_index is None:
        derived = pseudonyms.derive(department=department, person_id=person.id)
    else:
        derived = pseudonyms.derive_for_resident(
            department=department, resident_id_index=person.resident_id_index
        )
    kept = await repository.keep(session, {pair: derived})
    return kept[pair]


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
    [pseudonym] = await pseudonyms_for_residents(
        session, [(department, resident_id)], pseudonyms=pseudonyms, personal_data=personal_data
    )
    if pseudonym is None:
        raise NotFound(_NOT_ENROLLED.format(department))
    return pseudonym


async def pseudonyms_for_residents(
    session: AsyncSession,
    items: Sequence[tuple[str, str]],
    *,
    pseudonyms: Pseudonyms,
    personal_data: PersonalData,
) -> list[str | None]:
    """``pseudonym_for_resident`` for each ``(department, resident_id)``, in order; None where
    the department was never enrolled at this node (where the single answer is ``NotFound``).

    At most four statements however many items (data-exchange asks once per routing batch,
    inside its transaction): which departments are enrolled, which residents are registered
    and what is stored for them, then storing the pseudonyms first handed out (reading back
    any a concurrent caller stored first).
    """
    enrolled = await departments_repository.codes_known(
        session, {department for department, _ in items}
    )
    indexes = {
        resident_id: personal_data.resident_id_index(resident_id)
        for department, resident_id in items
        if department in enrolled
    }
    pairs = list(dict.fromkeys((d, indexes[r]) for d, r in items if d in enrolled))
    registered = await repository.subjects_of_residents(session, pairs) if pairs else {}
    stored = {pair: pseudonym for pair, (_, pseudonym) in registered.items() if pseudonym}
    # From the blind index, registered or not: what ``pseudonym_for`` derives for a person
    # with a resident ID, so the two paths agree before anything is stored.
    derived = {
        (department, index): pseudonyms.derive_for_resident(
            department=department, resident_id_index=index
        )
        for department, index in pairs
        if (department, index) not in stored
    }
    # A registered person's is stored on first use, as ``pseudonym_for`` stores it; one a
    # concurrent caller stored first wins.
    first = {pair: registered[pair][0] for pair in derived if pair in registered}
    if first:
        kept = await repository.keep(
            session, {(pair[0], person_id): derived[pair] for pair, person_id in first.items()}
        )
        stored |= {pair: kept[pair[0], person_id] for pair, person_id in first.items()}
    answers = derived | stored
    return [answers[d, indexes[r]] if d in enrolled else None for d, r in items]


async def person_for(session: AsyncSession, *, department: str, pseudonym: str) -> uuid.UUID:
    """The person behind a department's pseudonym; ``NotFound`` if it was never handed out."""
    person_id = await repository.person_of(session, department=department, pseudonym=pseudonym)
    if person_id is None:
        raise NotFound(f"department {department!r} was given no such pseudonym")
    return person_id
