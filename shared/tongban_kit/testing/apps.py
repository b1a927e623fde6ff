"""Drive an app in-process: its lifespan runs, and an httpx client talks to it over ASGI."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

__all__ = ["running_app"]


@contextlib.asynccontextmanager
async def running_app(
    app: FastAPI, base_url: str = "http://service"
) -> AsyncIterator[httpx.AsyncClient]:
    """Start the app's lifespan (relay and consumers included) and yield a client for it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client
