"""The gateway: one public port in front of the node's services.

Routing, token checks at the edge, rate limits, circuit breakers and streaming happen in the
``EdgeProxy`` mounted at ``/api``; the kit around it gives every request an id and a trace span,
the access log line and the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from prometheus_client import Gauge

from tongban_gateway.auth import EdgeAuth
from tongban_gateway.directory import Directory
from tongban_gateway.federation import NodeSigner, federation_router
from tongban_gateway.openapi import MergedOpenAPI
from tongban_gateway.proxy import EdgeProxy, GatewayApp
from tongban_gateway.ratelimit import Buckets, LocalBuckets, RedisBuckets
from tongban_gateway.relay import upstream_session
from tongban_gateway.routes import RouteTable
from tongban_gateway.security import browser_policy, install_browser_policy
from tongban_gateway.settings import GatewaySettings
from tongban_kit.auth.replay import replay_guard
from tongban_kit.middleware import BodyLimitMiddleware, RequestContextMiddleware
from tongban_kit.service import create_base_app

__all__ = ["create_app"]

logger = logging.getLogger("tongban.gateway")


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """The gateway app; its clients are built in the lifespan.

    Called by uvicorn (``--factory``, as the node launcher starts it) and by tests with their
    own settings. Raises ``RouteConfigError`` here, at start, when the route configuration or
    a service URL is unusable.
    """
    settings = settings or GatewaySettings()
    routes = RouteTable.from_settings(settings)
    directory = Directory(settings) if settings.directory_url else None
    signer = NodeSigner.from_settings(settings) if routes.nodes or directory else None
    proxy = EdgeProxy(routes, settings, signer=signer, directory=directory)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        node = settings.node
        buckets: Buckets = (
            RedisBuckets(settings.redis_url) if settings.redis_url else LocalBuckets()
        )
        # Only a node following the directory checks other nodes' assertions.
        replays = (
            replay_guard(settings.redis_url, node=node, scope="gateway")
            if directory is not None
            else None
        )
        try:
            async with upstream_session(settings) as session:
                auth = EdgeAuth(
                    app.state.jwks,
                    issuer=node.token_issuer,
                    audience=node.token_audience,
                    visitors=getattr(app.state, "visitors", None),
                )
                proxy.start(session, auth, buckets, replays)
                app.state.readiness.update(proxy.readiness_checks())
                describer = asyncio.create_task(openapi.refresh_forever(session), name="openapi")
                follower = None
                if directory is not None:
                    await directory.start(session)
                    follower = asyncio.create_task(
                        directory.refresh_forever(session), name="directory"
                    )
                # What start-up built lives as long as the app: out of the collector's sight,
                # so a full collection under load does not walk it every time (bench/gateway:
                # ~15% less CPU per proxied request, shorter p99); given back at shutdown.
                # Young collections every 10,000 allocations rather than 700: a proxied
                # request makes hundreds of short-lived containers (another ~6% of its CPU).
                gc.freeze()
                thresholds = gc.get_threshold()
                gc.set_threshold(10_000, 10, 10)
                logger.info(
                    "routes: %s; rate limits%s %s",
                    ", ".join(f"{u.name} -> {u.base_url}" for u in routes.upstreams),
                    " and node-assertion replays" if replays is not None else "",
                    "shared through Redis" if settings.redis_url else "per process",
                )
                try:
                    yield
                finally:
                    gc.set_threshold(*thresholds)
                    gc.unfreeze()
                    proxy.close()
                    for task in (describer, follower):
                        if task is not None:
                            task.cancel()
                            with contextlib.suppress(asyncio.CancelledError):
                                await task
        finally:
            await buckets.aclose()
            if replays is not None:
                await replays.aclose()

    app = create_base_app(
        settings=settings,
        title="Tongban gateway",
        description="The node's public entry: routes /api/<service>/… to the services.",
        routers=[federation_router(signer)] if signer else [],
        lifespan=lifespan,
        app_class=GatewayApp,
    )
    assert isinstance(app, GatewayApp)
    app.state.proxy = proxy
    if directory is not None:
        app.state.readiness_details["directory"] = directory.details
        Gauge(
            "tongban_directory_age_seconds",
            "Age of this node's copy of the central directory (since central signed it); "
            "-1 without a copy",
            registry=app.state.metrics.registry,
        ).set_function(directory.age_s)
    # The kit's request context (id, trace, access log, metrics) and body limit around the
    # proxy alone, in the same browser policy as the app's: /api requests go straight there
    # (GatewayApp), past the framework. The body limit is the highest route limit (an upload
    # route may take more than the node's default); the proxy applies each route's own limit
    # once the route is known.
    origins, production = settings.cors_origins, settings.node.environment == "production"
    app.api = browser_policy(
        RequestContextMiddleware(
            BodyLimitMiddleware(
                proxy, max_bytes=max(settings.node.max_body_bytes, routes.max_body_bytes)
            ),
            metrics=app.state.metrics,
        ),
        cors_origins=origins,
        production=production,
    )
    openapi = MergedOpenAPI(app, routes)
    # FastAPI's /openapi.json and /docs serve what this returns: the node's whole API.
    app.openapi = openapi.document  # type: ignore[method-assign]
    install_browser_policy(app, cors_origins=origins, production=production)
    return app
