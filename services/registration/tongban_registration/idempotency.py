"""``Idempotency-Key``: a repeated request gets the first answer and changes nothing.

The key is stored per caller in the request's own transaction, before the work. A second
request with the same key blocks on the primary key until the first commits, then reads its
answer; so a replay never runs twice even when the two arrive together. Only successful
answers are kept: a refused request rolls back with its key and may be retried as it is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_kit.errors import Conflict
from tongban_registration.models import IdempotentRequest

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Any unique string (a UUID is good): a repeat with the same key and body "
        "returns the first answer and changes nothing.",
    ),
]


def _fingerprint(operation: str, payload: Any) -> str:
    canonical = json.dumps(
        [operation, jsonable_encoder(payload)], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def once(
    session: AsyncSession,
    *,
    caller: str,
    key: str | None,
    operation: str,
    payload: Any,
    status_code: int,
    run: Callable[[], Awaitable[Any]],
) -> JSONResponse:
    """Run ``run`` (its result is the JSON body) unless ``key`` was seen; then replay it."""
    if key is None:
        return JSONResponse(jsonable_encoder(await run()), status_code=status_code)
    fingerprint = _fingerprint(operation, payload)
    inserted = await session.scalar(
        insert(IdempotentRequest)
        .values(caller=caller, key=key, operation=operation, fingerprint=fingerprint)
        .on_conflict_do_nothing()
        .returning(IdempotentRequest.key)
    )
    if inserted is None:
        seen = await session.scalar(
            select(IdempotentRequest).where(
                IdempotentRequest.caller == caller, IdempotentRequest.key == key
            )
        )
        assert seen is not None
        assert seen.status_code is not None
        if seen.fingerprint != fingerprint:
            raise Conflict(
                "this Idempotency-Key was used for a different request; use a new key",
                idempotency_key=key,
            )
        return JSONResponse(seen.body, status_code=seen.status_code)
    body = jsonable_encoder(await run())
    await session.execute(
        update(IdempotentRequest)
        .where(IdempotentRequest.caller == caller, IdempotentRequest.key == key)
        .values(status_code=status_code, body=body)
    )
    return JSONResponse(body, status_code=status_code)
