"""Person sign-up: validated resident ID, sealed identifiers, argon2id password."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.audit import service as audit
from tongban_identity.models import Person
from tongban_identity.persons import repository
from tongban_identity.persons.protection import PHONE, RESIDENT_ID, PersonalData, mask_phone
from tongban_kit.crypto import PasswordHasher
from tongban_kit.errors import Conflict, NotFound
from tongban_kit.events import CloudEvent
from tongban_kit.identifiers import mask_resident_id
from tongban_kit.outbox import add_event

PERSON_REGISTERED = "gov.tongban.identity.person.registered.v1"


async def register(
    session: AsyncSession,
    *,
    resident_id: str,
    name: str,
    phone: str,
    password: str,
    node: str,
    personal_data: PersonalData,
    hasher: PasswordHasher,
) -> Person:
    """Sign a person up at level of assurance ``low`` (self-asserted)."""
    # argon2id costs tens of milliseconds of CPU: keep it off the event loop.
    password_hash = await asyncio.to_thread(hasher.hash, password)
    person = Person(
        name=name,
        node=node,
        resident_id_sealed=personal_data.seal(resident_id, context=RESIDENT_ID),
        resident_id_index=personal_data.resident_id_index(resident_id),
        resident_id_masked=mask_resident_id(resident_id),
        phone_sealed=personal_data.seal(phone, context=PHONE),
        phone_masked=mask_phone(phone),
        password_hash=password_hash,
        loa="low",
    )
    try:
        person = await repository.add(session, person)
    except repository.ResidentIdTaken as exc:
        raise Conflict("a person with this resident ID number is already registered") from exc
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
    await audit.record(session, type="signed_up", node=node, subject=person.id, actor=audit.SELF)
    return person


async def get(session: AsyncSession, *, person_id: uuid.UUID) -> Person:
    person = await repository.get(session, person_id)
    if person is None:
        raise NotFound(f"no person {person_id}")
    return person
