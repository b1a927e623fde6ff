from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from tongban_identity.departments.models import CODE_PATTERN
from tongban_identity.pairwise import DERIVE_SCOPE, RESOLVE_SCOPE, service
from tongban_identity.pairwise.derivation import PSEUDONYM_PATTERN
from tongban_identity.pairwise.schemas import (
    PairwiseBatchAnswer,
    PairwiseBatchDerivation,
    PairwiseBatchRequest,
    PairwiseDerivation,
    PairwiseDerivationRequest,
    PairwiseSubjectOut,
)
from tongban_kit.auth import AccessClaims, require
from tongban_kit.db import SessionDep
from tongban_kit.errors import Forbidden

router = APIRouter(tags=["pairwise subjects"])
Resolver = Annotated[AccessClaims, Depends(require(RESOLVE_SCOPE))]
Deriver = Annotated[AccessClaims, Depends(require(DERIVE_SCOPE))]
#: Service accounts are enrolled as clients with this code prefix (``svc-<service>``); their
#: tokens may name the code as ``department``, but they are platform services, not departments.
SERVICE_CLIENT_PREFIX = "svc-"
Department = Annotated[str, Path(pattern=CODE_PATTERN, description="A department code.")]


@router.get("/v1/pairwise/{department}/{pseudonym}", response_model=PairwiseSubjectOut)
async def resolve_pseudonym(
    department: Department,
    pseudonym: Annotated[str, Path(pattern=PSEUDONYM_PATTERN)],
    session: SessionDep,
    caller: Resolver,
) -> PairwiseSubjectOut:
    """The person a department knows by this pseudonym.

    Access: `identity:pairwise:resolve` only. Departments themselves see pseudonyms; when a
    department may see the real identifier will be decided by a grant in data-exchange,
    which then resolves on its behalf. 404 if the pseudonym was never handed out.
    """
    person_id = await service.person_for(session, department=department, pseudonym=pseudonym)
    return PairwiseSubjectOut(department=department, pseudonym=pseudonym, person_id=person_id)


@router.get("/v1/persons/{person_id}/pairwise/{department}", response_model=PairwiseSubjectOut)
async def pseudonym_of_person(
    person_id: uuid.UUID,
    department: Department,
    session: SessionDep,
    request: Request,
    caller: Resolver,
) -> PairwiseSubjectOut:
    """The pseudonym a department knows a person by, made on first request and the same ever
    after; another department gets another one.

    Access: `identity:pairwise:resolve` only. 404 if the person does not exist or the
    department was never enrolled at this node.
    """
    pseudonym = await service.pseudonym_for(
        session,
        person_id=person_id,
        department=department,
        pseudonyms=request.app.state.pseudonyms,
    )
    return PairwiseSubjectOut(department=department, pseudonym=pseudonym, person_id=person_id)


@router.post("/v1/pairwise/subjects", response_model=PairwiseDerivation)
async def derive_pseudonym(
    body: PairwiseDerivationRequest, session: SessionDep, request: Request, caller: Deriver
) -> PairwiseDerivation:
    """The pseudonym a department knows (or, for someone not yet registered, will know) the
    holder of a resident ID number by: what the department sees as that person's subject.

    Access: platform services with `identity:pairwise:derive` (data-exchange, with its service
    token); never a department's token (403), or a department could turn ID numbers into the
    pseudonyms of another. 404 if the department was never enrolled at this node; 422 for a
    malformed body or resident ID number. The answer never echoes the ID number.
    """
    _refuse_departments(caller)
    state = request.app.state
    pseudonym = await service.pseudonym_for_resident(
        session,
        resident_id=body.resident_id,
        department=body.department,
        pseudonyms=state.pseudonyms,
        personal_data=state.personal_data,
    )
    return PairwiseDerivation(department=body.department, pseudonym=pseudonym)


@router.post("/v1/pairwise/subjects/batch", response_model=PairwiseBatchDerivation)
async def derive_pseudonyms(
    body: PairwiseBatchRequest, session: SessionDep, request: Request, caller: Deriver
) -> PairwiseBatchDerivation:
    """`POST /v1/pairwise/subjects` for up to 500 pairs at once: `{"items": [{"department",
    "resident_id"}, ...]}` answers `{"pseudonyms": [{"department", "pseudonym"}, ...]}`, one
    answer per item in request order, each the pseudonym the single endpoint gives.

    Access as for the single endpoint: `identity:pairwise:derive`, never a department's token
    (403). Where the single endpoint answers 404 (the department was never enrolled at this
    node) the answer's `pseudonym` is null; 422 for a malformed body, no items or more than 500,
    or any malformed resident ID number (nothing is answered then). The answer never echoes
    the ID numbers.
    """
    _refuse_departments(caller)
    state = request.app.state
    answers = await service.pseudonyms_for_residents(
        session,
        [(item.department, item.resident_id) for item in body.items],
        pseudonyms=state.pseudonyms,
        personal_data=state.personal_data,
    )
    return PairwiseBatchDerivation(
        pseudonyms=[
            PairwiseBatchAnswer(department=item.department, pseudonym=pseudonym)
            for item, pseudonym in zip(body.items, answers, strict=True)
        ]
    )


def _refuse_departments(caller: AccessClaims) -> None:
    """Only platform services derive pseudonyms: a department could otherwise turn ID numbers
    into the pseudonyms another department knows people by."""
    if caller.principal == "department" and not (caller.department or "").startswith(
        SERVICE_CLIENT_PREFIX
    ):
        raise Forbidden("a department's token may not derive pseudonyms")
