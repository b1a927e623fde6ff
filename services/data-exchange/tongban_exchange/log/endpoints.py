from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from tongban_exchange.log import chain, signatures
from tongban_kit.auth import OPERATOR_SCOPE, AccessClaims, require
from tongban_kit.db import SessionDep

router = APIRouter(prefix="/v1/audit", tags=["message log"])


class FindingOut(BaseModel):
    seq: int
    problem: str


class VerifyOut(BaseModel):
    ok: bool
    rows: int
    checkpoints: int
    head_seq: int
    findings: list[FindingOut]
    signatures_checked: bool


@router.get("/verify", response_model=VerifyOut)
async def verify_log(
    session: SessionDep,
    request: Request,
    caller: Annotated[AccessClaims, Depends(require(OPERATOR_SCOPE))],
) -> VerifyOut:
    """Walk the message log's hash chain and its checkpoints; name each row that fails.
    Checkpoint signatures are checked against identity's document keys when identity
    answers (`signatures_checked`).

    Access: operators (`tongban:admin`). The same check as `tongban audit verify`.
    """
    exchange = request.app.state.exchange
    keys = None
    if exchange.http is not None:
        keys = await signatures.fetch_keys(exchange.http, exchange.identity_url())
    report = await chain.verify(session, keys)
    return VerifyOut(
        ok=report.ok,
        rows=report.rows,
        checkpoints=report.checkpoints,
        head_seq=report.head_seq,
        findings=[FindingOut(seq=f.seq, problem=f.problem) for f in report.findings],
        signatures_checked=report.signatures_checked,
    )
