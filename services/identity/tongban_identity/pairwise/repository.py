"""All SQL on ``pairwise_subjects`` (``subjects_of_residents`` also reads ``persons``: a
resident's person and their stored pseudonyms in one round trip).

Pairs travel as one array per column (``unnest($1, $2)``): one statement for one pair or five
hundred, and the same text for any number, so asyncpg prepares it once per connection.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import ARRAY, String, Uuid, and_, bindparam, column, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import TableValuedAlias

from tongban_identity.models import Person
from tongban_identity.pairwise.models import PairwiseSubject

#: A department and identity's id for a person.
Pair = tuple[str, uuid.UUID]
#: A department and the blind index of a resident ID number.
ResidentPair = tuple[str, str]


async def person_of(session: AsyncSession, *, department: str, pseudonym: str) -> uuid.UUID | None:
    return await session.scalar(
        select(PairwiseSubject.person_id).where(
            PairwiseSubject.department == department, PairwiseSubject.pseudonym == pseudonym
        )
    )


async def pseudonyms_of(session: AsyncSession, pairs: Collection[Pair]) -> dict[Pair, str]:
    """The pseudonym stored for each pair that has one."""
    wanted = _table(
        ("department", String, [department for department, _ in pairs]),
        ("person_id", Uuid, [person_id for _, person_id in pairs]),
    )
    rows = await session.execute(
        select(PairwiseSubject.department, PairwiseSubject.person_id, PairwiseSubject.pseudonym)
        .select_from(wanted)
        .join(
            PairwiseSubject,
            and_(
                PairwiseSubject.department == wanted.c.department,
                PairwiseSubject.person_id == wanted.c.person_id,
            ),
        )
    )
    return {(department, person_id): pseudonym for department, person_id, pseudonym in rows}


async def subjects_of_residents(
    session: AsyncSession, pairs: Collection[ResidentPair]
) -> dict[ResidentPair, tuple[uuid.UUID, str | None]]:
    """For each (department, resident ID blind index) pair whose person is registered: the
    person's id and the pseudonym stored for them and the department (None if none is yet).
    Pairs of people identity does not know are left out."""
    wanted = _table(
        ("department", String, [department for department, _ in pairs]),
        ("resident_id_index", String, [index for _, index in pairs]),
    )
    rows = await session.execute(
        select(wanted.c.department, Person.resident_id_index, Person.id, PairwiseSubject.pseudonym)
        .select_from(wanted)
        .join(Person, Person.resident_id_index == wanted.c.resident_id_index)
        .outerjoin(
            PairwiseSubject,
            and_(
                PairwiseSubject.department == wanted.c.department,
                PairwiseSubject.person_id == Person.id,
            ),
        )
    )
    return {(department, index): (person, stored) for department, index, person, stored in rows}


async def keep(session: AsyncSession, pseudonyms: Mapping[Pair, str]) -> dict[Pair, str]:
    """Store each pseudonym unless one is stored for its pair already (a concurrent caller, or
    one derived under an earlier key); return the stored ones, every pair's."""
    # One order for every caller: two transactions storing overlapping pairs cannot each wait
    # for a row the other has inserted.
    rows = sorted(pseudonyms.items())
    given = _table(
        ("department", String, [department for (department, _), _ in rows]),
        ("person_id", Uuid, [person_id for (_, person_id), _ in rows]),
        ("pseudonym", String, [pseudonym for _, pseudonym in rows]),
    )
    inserted = await session.execute(
        insert(PairwiseSubject)
        .from_select(
            ["department", "person_id", "pseudonym"],
            select(given.c.department, given.c.person_id, given.c.pseudonym),
        )
        .on_conflict_do_nothing(index_elements=["department", "person_id"])
        .returning(PairwiseSubject.department, PairwiseSubject.person_id, PairwiseSubject.pseudonym)
    )
    kept = {(department, person_id): pseudonym for department, person_id, pseudonym in inserted}
    if len(kept) < len(rows):  # stored before: read them in a statement that sees them
        kept |= await pseudonyms_of(session, [pair for pair in pseudonyms if pair not in kept])
    return kept


def _table(*columns: tuple[str, Any, list[Any]]) -> TableValuedAlias:
    """Rows given column by column, as ``unnest(array, …) AS wanted(name, …)``."""
    arrays = [bindparam(f"{name}s", values, type_=ARRAY(type_)) for name, type_, values in columns]
    named = [column(name, type_) for name, type_, _ in columns]
    return func.unnest(*arrays).table_valued(*named).render_derived(name="wanted")
