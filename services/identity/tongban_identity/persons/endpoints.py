from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from tongban_identity.persons import service
from tongban_identity.persons.schemas import PersonCreate, PersonOut
from tongban_kit.db import SessionDep

router = APIRouter(prefix="/v1/persons", tags=["persons"])


@router.post("", status_code=201, response_model=PersonOut)
async def register_person(body: PersonCreate, session: SessionDep, request: Request) -> PersonOut:
    """Register a person at this node.

    Access: public (sign-up). Emits `gov.tongban.identity.person.registered.v1`.
    """
    node = request.app.state.settings.node.node_code
    person = await service.register(session, name=body.name, node=node)
    return PersonOut.model_validate(person)


@router.get("/{person_id}", response_model=PersonOut)
async def get_person(person_id: uuid.UUID, session: SessionDep) -> PersonOut:
    """Read a person. Access: skeleton, open; the identity issue restricts it to the person."""
    return PersonOut.model_validate(await service.get(session, person_id=person_id))
