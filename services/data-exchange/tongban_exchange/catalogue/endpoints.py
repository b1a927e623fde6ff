from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from tongban_exchange.catalogue import asyncapi, service
from tongban_exchange.catalogue.schemas import DatasetCreate, DatasetOut
from tongban_kit.auth import OPERATOR_SCOPE, AccessClaims, require
from tongban_kit.db import SessionDep

router = APIRouter(tags=["catalogue"])


@router.get("/v1/datasets", response_model=list[DatasetOut])
async def list_datasets(
    session: SessionDep, caller: Annotated[AccessClaims, Depends(require())]
) -> list[DatasetOut]:
    """Every dataset of the catalogue: owner, schema, personal fields, sharing and scope.

    Access: any caller with a valid access token of this node.
    """
    return [DatasetOut.model_validate(d) for d in await service.all_datasets(session)]


@router.get("/v1/datasets/{name}", response_model=DatasetOut)
async def get_dataset(
    name: str, session: SessionDep, caller: Annotated[AccessClaims, Depends(require())]
) -> DatasetOut:
    """One dataset of the catalogue.

    Access: any caller with a valid access token of this node.
    """
    return DatasetOut.model_validate(await service.get(session, name))


@router.post("/v1/datasets", status_code=201, response_model=DatasetOut)
async def add_dataset(
    body: DatasetCreate,
    session: SessionDep,
    caller: Annotated[AccessClaims, Depends(require(OPERATOR_SCOPE))],
) -> DatasetOut:
    """Add a record dataset a department publishes to (event types come from the kit).

    Access: operators (`tongban:admin`). 409 if the name is taken, 400 for a schema that is
    not a JSON Schema 2020-12 of an object.
    """
    return DatasetOut.model_validate(await service.add_record_dataset(session, body))


@router.get("/v1/asyncapi.json")
async def asyncapi_document(request: Request, session: SessionDep) -> dict[str, Any]:
    """The AsyncAPI 3 document of the node's events, generated from the catalogue.

    Access: public (it describes schemas, never data).
    """
    datasets = await service.all_datasets(session)
    return asyncapi.build(datasets, request.app.state.settings.node)
