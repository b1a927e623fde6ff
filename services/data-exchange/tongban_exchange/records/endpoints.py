from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from tongban_exchange.models import BusinessRecord
from tongban_exchange.records import service as records
from tongban_kit.auth import AccessClaims, require
from tongban_kit.db import SessionDep
from tongban_kit.errors import NotFound
from tongban_kit.identifiers import InvalidIdentifier, validate_uscc

router = APIRouter(prefix="/v1/records", tags=["records"])


class BusinessRecordOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    uscc: str
    name: str
    division_code: str
    updated_at: datetime


@router.get("/businesses/{uscc}", response_model=BusinessRecordOut)
async def latest_business_record(
    uscc: str,
    session: SessionDep,
    caller: Annotated[AccessClaims, Depends(require())],
) -> BusinessRecordOut:
    """The latest business record by USCC.

    Access: any caller with a valid access token of this node (skeleton; the data-exchange
    issue puts record queries under grants with a stated purpose).
    """
    try:
        record = await session.get(BusinessRecord, validate_uscc(uscc))
    except InvalidIdentifier:  # no such code, so no such record
        record = None
    if record is None:
        raise NotFound("no business record for that USCC")
    return BusinessRecordOut.model_validate(record)


#: A department publishes records to its own datasets.
PUBLISH_SCOPE = "exchange:publish"
#: A department queries another's latest record under a grant.
QUERY_SCOPE = "exchange:query"

datasets_router = APIRouter(prefix="/v1/datasets", tags=["records"])


class RecordPublish(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, description="The record's version; each publish raises it.")
    data: dict[str, Any] = Field(description="The record, valid against the dataset's schema.")


class RecordOut(BaseModel):
    dataset: str
    key: str
    version: int
    event_id: str
    published_at: datetime
    data: dict[str, Any] | None = Field(
        default=None, description="The record as the caller may see it (queries only)."
    )


Key = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")]


@datasets_router.put("/{dataset}/records/{key}", response_model=RecordOut)
async def publish_record(
    dataset: str,
    key: Key,
    body: RecordPublish,
    session: SessionDep,
    request: Request,
    response: Response,
    caller: Annotated[AccessClaims, Depends(require(PUBLISH_SCOPE, principals=("department",)))],
) -> RecordOut:
    """Publish the latest version of a record to one of the caller's own datasets.

    Access: the dataset's owner department with `exchange:publish`. 400 if the data breaks
    the schema; the same version with the same data again is a harmless retry (200);
    an older version, or the same version with other data, is 409. A new version is
    delivered to the dataset's grantees and logged. 201 for a key's first record.
    """
    record, outcome = await records.publish(
        session,
        request.app.state.exchange,
        department=str(caller.department),
        dataset_name=dataset,
        key=key,
        version=body.version,
        data=body.data,
    )
    response.status_code = 201 if outcome == "created" else 200
    return RecordOut(
        dataset=record.dataset,
        key=record.key,
        version=record.version,
        event_id=record.event_id,
        published_at=record.published_at,
    )


@datasets_router.get("/{dataset}/records/{key}", response_model=RecordOut)
async def query_record(
    dataset: str,
    key: Key,
    session: SessionDep,
    request: Request,
    caller: Annotated[AccessClaims, Depends(require(QUERY_SCOPE, principals=("department",)))],
    purpose: Annotated[str, Query(min_length=3, max_length=500, description="Why it is asked.")],
) -> RecordOut:
    """Another department's latest record by key, with only the fields the caller's grant
    names (personal identifiers pseudonymised unless the grant allows them).

    Access: departments with `exchange:query` that hold an active grant for the dataset
    (the owner sees its own records whole); 403 without one. The stated purpose is kept
    in the message log.
    """
    record, data = await records.query(
        session,
        request.app.state.exchange,
        department=str(caller.department),
        dataset_name=dataset,
        key=key,
        purpose=purpose,
    )
    return RecordOut(
        dataset=record.dataset,
        key=record.key,
        version=record.version,
        event_id=record.event_id,
        published_at=record.published_at,
        data=data,
    )
