"""Liveness, readiness and metrics endpoints every service mounts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.client import AIOKafkaClient
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["Check", "broker_check", "database_check", "health_router"]

Check = Callable[[], Awaitable[None]]
_CHECK_TIMEOUT_S = 2.0


def database_check(engine: AsyncEngine) -> Check:
    async def check() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    return check


def broker_check(bootstrap_servers: str, *, cache_s: float = 2.0) -> Check:
    """Bootstrap a Kafka client (metadata round trip); a success is remembered briefly."""
    last_ok = 0.0

    async def check() -> None:
        nonlocal last_ok
        if time.monotonic() - last_ok < cache_s:
            return
        client = AIOKafkaClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=2_000)
        try:
            await client.bootstrap()
        finally:
            await client.close()
        last_ok = time.monotonic()

    return check


def health_router() -> APIRouter:
    """``/healthz`` (alive), ``/readyz`` (every dependency answers) and ``/metrics``.

    Readiness checks come from ``app.state.readiness``: a mapping of name to check.
    """
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        """Public. Always 200 while the process serves requests."""
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: database and broker reachable")
    async def readyz(request: Request) -> JSONResponse:
        """Public. 200 when every dependency answers within 2 s, else 503 naming the failures."""
        checks: dict[str, Check] = request.app.state.readiness
        results = await asyncio.gather(
            *(asyncio.wait_for(check(), _CHECK_TIMEOUT_S) for check in checks.values()),
            return_exceptions=True,
        )
        report: dict[str, Any] = {}
        for name, result in zip(checks, results, strict=True):
            report[name] = "ok" if result is None else f"failed: {type(result).__name__}"
        ready = all(value == "ok" for value in report.values())
        body: dict[str, Any] = {"status": "ready" if ready else "not ready", "checks": report}
        details: dict[str, Callable[[], Any]] = getattr(request.app.state, "readiness_details", {})
        if details:
            body["details"] = {name: describe() for name, describe in details.items()}
        return JSONResponse(body, status_code=200 if ready else 503)

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        """Public on the service port; the gateway does not route it from outside."""
        return Response(
            generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )

    return router
