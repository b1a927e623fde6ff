"""The service behind the gateway in the benchmark: one GET answering about 1 KB of JSON.

Served by ``run.py`` with uvicorn, one worker (``uvicorn service:app``), the same way for every
path measured: direct, through the gateway, through nginx.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI(title="bench service")


class Record(BaseModel):
    uscc: str
    name: str
    division_code: str
    status: str
    activities: list[str]
    acknowledgements: list[dict[str, str]]


RECORD = Record(
    uscc="91440300MA5FXXXX0X",
    name="Shenzhen Tongban Example Technology Co., Ltd.",
    division_code="440300",
    status="registered",
    activities=[f"activity {n}: software development and information services" for n in range(8)],
    acknowledgements=[
        {"department": f"440300-D{n}", "status": "acknowledged", "at": "2026-11-26T10:00:00Z"}
        for n in range(6)
    ],
)


@app.get("/v1/records/{uscc}", response_model=Record)
async def record(uscc: str) -> Record:
    """A business record (the same one each time). Access: public (benchmark only)."""
    return RECORD


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    """Ready (the gateway checks each upstream). Access: public."""
    return {"status": "ready"}
