from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from tongban_identity.persons import service
from tongban_identity.persons.schemas import PersonCreate, PersonOut
from tongban_kit.db import SessionDep

router = APIRouter(prefix="/v1/persons", tags=["persons"])


@router.post("", status_code=201, response_model=PersonOut)
async def register_person(body: PersonCreate, session: SessionDep, request: Request) -> PersonOut:
    """Sign a person up with resident ID number, name, phone and password.

    Access: public (sign-up). The person starts at level of assurance `low`. The ID number and
    phone are stored sealed and only ever returned masked. Emits
    `gov.tongban.identity.person.registered.v1` (which carries no personal data).
    """
    state = request.app.state
    person = await service.register(
        session,
        resident_id=body.resident_id,
        name=body.name,
        phone=body.phone,
        password=body.password,
        node=state.settings.node.node_code,
        personal_data=state.personal_data,
        hasher=state.password_hasher,
    )
    return PersonOut.model_validate(person)


@router.get("/{person_id}", response_model=PersonOut)
async def get_person(person_id: uuid.UUID, session: SessionDep) -> PersonOut:
    """Read a person, identifiers masked.

    Access: skeleton, open; restricted to the person themself once login issues tokens.
    """
    return PersonOut.model_validate(await service.get(session, person_id=person_id))
