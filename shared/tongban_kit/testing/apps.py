"""Drive an app in a test: in-process over ASGI, or served by uvicorn on a real port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import uvicorn
from fastapi import FastAPI

from tongban_kit.infra import free_port

__all__ = ["running_app", "serving_app"]


@contextlib.asynccontextmanager
async def running_app(
    app: FastAPI, base_url: str = "http://service"
) -> AsyncIterator[httpx.AsyncClient]:
    """Start the app's lifespan (relay and consumers included) and yield a client for it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


@contextlib.asynccontextmanager
async def serving_app(app: FastAPI, *, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve the app with uvicorn on a free port of this event loop; yield its base URL.

    For tests where another service calls this one over real HTTP (a service account asking
    identity for a token, a gateway in front of a service).
    """
    port = free_port()
    config = uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name=f"uvicorn-{port}")
    try:
        while not server.started:
            if task.done():
                task.result()  # raises what made start-up fail
                raise RuntimeError("uvicorn stopped during start-up")
            await asyncio.sleep(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task
