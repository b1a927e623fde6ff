"""The gateway: one public port in front of the node's services.

Path routing and streaming proxying for now; token checks, rate limits, circuit breaking and the
merged OpenAPI come with the gateway issue.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from tongban_gateway.proxy import build_upstream_client, proxy_router, readiness_checks
from tongban_gateway.routes import RouteTable
from tongban_gateway.security import SecurityHeadersMiddleware
from tongban_gateway.settings import GatewaySettings
from tongban_kit.service import create_base_app

__all__ = ["create_app"]

logger = logging.getLogger("tongban.gateway")


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """The gateway app; its upstream client is built in the lifespan.

    Called by uvicorn (``--factory``, as the node launcher starts it) and by tests with their
    own settings. Raises ``RouteConfigError`` here, at start, when a service URL in the
    settings is unusable.
    """
    settings = settings or GatewaySettings()
    routes = RouteTable.from_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with build_upstream_client(settings) as client:
            app.state.upstream_client = client
            app.state.readiness.update(readiness_checks(client, routes))
            logger.info(
                "routes: %s",
                ", ".join(f"{u.name} -> {u.base_url}" for u in routes.upstreams),
            )
            yield

    app = create_base_app(
        settings=settings,
        title="Tongban gateway",
        description="The node's public entry: routes /api/<service>/… to the services.",
        routers=[proxy_router(routes)],
        lifespan=lifespan,
        verify_tokens=False,  # passes tokens on; the services check them
    )
    # Outermost: every response, a 413 or a last-resort 500 included, leaves with the
    # security headers.
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.node.environment == "production")
    return app
