from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from tongban_identity.departments import service
from tongban_identity.departments.schemas import DepartmentCreate, DepartmentList, DepartmentOut
from tongban_kit.auth import OPERATOR_SCOPE, AccessClaims, require
from tongban_kit.db import SessionDep

#: The operators' scope: enrolling and disabling departments.
ADMIN_SCOPE = OPERATOR_SCOPE

router = APIRouter(prefix="/v1/admin/departments", tags=["departments (operators)"])
Operator = Annotated[AccessClaims, Depends(require(ADMIN_SCOPE))]
ClientId = Annotated[str, Path(max_length=64, pattern=r"^dept-[a-z0-9-]+$")]


@router.post("", status_code=201, response_model=DepartmentOut)
async def create_department(
    body: DepartmentCreate,
    session: SessionDep,
    request: Request,
    response: Response,
    operator: Operator,
) -> DepartmentOut:
    """Enrol a department as an OAuth client of this node, with its public keys and scopes.

    Access: operators (`tongban:admin`). Returns the new `client_id`; the department then gets
    tokens by client credentials with `private_key_jwt`, signing with one of the keys given
    here. 409 if the department already has an enabled client. Emits
    `gov.tongban.identity.department.created.v1`.
    """
    client = await service.create_department(
        session, enrolment=body, node=request.app.state.settings.node.node_code
    )
    response.headers["Location"] = f"{router.prefix}/{client.client_id}"
    return DepartmentOut.model_validate(client)


@router.get("", response_model=DepartmentList)
async def list_departments(
    session: SessionDep, operator: Operator, include_disabled: bool = False
) -> DepartmentList:
    """The departments enrolled at this node, by code; disabled ones only if asked for.

    Access: operators (`tongban:admin`).
    """
    clients = await service.list_departments(session, include_disabled=include_disabled)
    return DepartmentList(items=[DepartmentOut.model_validate(c) for c in clients])


@router.get("/{client_id}", response_model=DepartmentOut)
async def get_department(
    client_id: ClientId, session: SessionDep, operator: Operator
) -> DepartmentOut:
    """One department client. Access: operators (`tongban:admin`)."""
    return DepartmentOut.model_validate(await service.get_department(session, client_id=client_id))


@router.post("/{client_id}/disable", response_model=DepartmentOut)
async def disable_department(
    client_id: ClientId, session: SessionDep, operator: Operator
) -> DepartmentOut:
    """Disable a department client: it gets no new token; those it holds expire within the
    access-token lifetime. Disabling again changes nothing.

    Access: operators (`tongban:admin`).
    """
    client = await service.disable_department(session, client_id=client_id, now=datetime.now(UTC))
    return DepartmentOut.model_validate(client)
