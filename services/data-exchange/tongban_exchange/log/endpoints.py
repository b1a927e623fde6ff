from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from tongban_exchange.log import chain
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


@router.get("/verify", response_model=VerifyOut)
async def verify_log(
    session: SessionDep, caller: Annotated[AccessClaims, Depends(require(OPERATOR_SCOPE))]
) -> VerifyOut:
    """Walk the message log's hash chain and its checkpoints; name each row that fails.

    Access: operators (`tongban:admin`). The same check as `tongban audit verify`.
    """
    report = await chain.verify(session)
    return VerifyOut(
        ok=report.ok,
        rows=report.rows,
        checkpoints=report.checkpoints,
        head_seq=report.head_seq,
        findings=[FindingOut(seq=f.seq, problem=f.problem) for f in report.findings],
    )
