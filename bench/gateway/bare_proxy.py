"""A bare reverse proxy, for reference in the benchmark: a plain ASGI app on one aiohttp client,
no routing table, no token check, no limits, no logs. What the gateway's features cost is the
distance between this and the gateway in the same run.

    BARE_UPSTREAM=http://127.0.0.1:8003 uvicorn bare_proxy:app --app-dir bench/gateway
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp

UPSTREAM = os.environ.get("BARE_UPSTREAM", "http://127.0.0.1:8003")
_DROP = frozenset({b"host", b"connection", b"keep-alive", b"transfer-encoding"})
_session: aiohttp.ClientSession | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _session
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _session = aiohttp.ClientSession(auto_decompress=False)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _session is not None:
                    await _session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert _session is not None
    headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k not in _DROP]
    query = scope["query_string"].decode()
    url = UPSTREAM + scope["path"] + ("?" + query if query else "")
    async with _session.request(scope["method"], url, headers=headers) as response:
        out = [(k.lower(), v) for k, v in response.raw_headers if k.lower() not in _DROP]
        await send({"type": "http.response.start", "status": response.status, "headers": out})
        async for chunk in response.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
