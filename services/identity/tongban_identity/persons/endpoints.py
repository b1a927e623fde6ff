from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from tongban_identity.persons import service
from tongban_identity.persons.schemas import PersonCreate, PersonOut
from tongban_kit.auth import OPERATOR_SCOPE, AccessClaims, require
from tongban_kit.db import SessionDep
from tongban_kit.errors import NotFound

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
async def get_person(
    person_id: uuid.UUID,
    session: SessionDep,
    caller: Annotated[AccessClaims, Depends(require())],
) -> PersonOut:
    """Read a person, identifiers masked.

    Access: the person themself (their own access token) and operators (`tongban:admin`).
    Anyone else gets 404, as for an id that does not exist: ids are not to be probed.
    """
    own = caller.principal == "person" and caller.sub == str(person_id)
    if not own and OPERATOR_SCOPE not in caller.scopes:
        raise NotFound(f"no person {person_id}")
    return PersonOut.model_validate(await service.get(session, person_id=person_id))
