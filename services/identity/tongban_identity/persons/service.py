"""Person sign-up (the walking skeleton: name only; the identity issue adds the resident ID)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.models import Person
from tongban_identity.persons import repository
from tongban_kit.errors import NotFound
from tongban_kit.events import CloudEvent
from tongban_kit.outbox import add_event

PERSON_REGISTERED = "gov.tongban.identity.person.registered.v1"


async def register(session: AsyncSession, *, name: str, node: str) -> Person:
    person = await repository.add(session, Person(name=name, node=node))
    await add_event(
        session,
        CloudEvent.new(
            PERSON_REGISTERED,
            source=f"/nodes/{node}/identity",
            subject=str(person.id),
            data={
                "person_id": str(person.id),
                "node": node,
                "registered_at": person.created_at.isoformat(),
            },
        ),
    )
    return person


async def get(session: AsyncSession, *, person_id: uuid.UUID) -> Person:
    person = await repository.get(session, person_id)
    if person is None:
        raise NotFound(f"no person {person_id}")
    return person
