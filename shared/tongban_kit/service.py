"""Build a Tongban service: one function wires the kit around a service's routers and handlers.

Everything is built in the lifespan, nothing at import time: settings, logging, the database
engine, the outbox relay and the event consumers. Tests build an app with their own settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import httpx
from fastapi import APIRouter, FastAPI

from tongban_kit.auth.client import ServiceTokens, load_service_key
from tongban_kit.auth.dependencies import token_verification
from tongban_kit.auth.visitors import visitor_verification
from tongban_kit.db.engine import build_engine, build_sessionmaker
from tongban_kit.errors import install_problem_handlers
from tongban_kit.health import broker_check, database_check, health_router
from tongban_kit.inbox import EventConsumer, Subscription
from tongban_kit.middleware import BodyLimitMiddleware, RequestContextMiddleware
from tongban_kit.observability.logs import configure_logging
from tongban_kit.observability.metrics import ServiceMetrics
from tongban_kit.openapi import install_problem_docs
from tongban_kit.outbox.relay import OutboxRelay
from tongban_kit.settings import BaseServiceSettings, ServiceSettings

__all__ = ["Lifespan", "ServiceSpec", "create_base_app", "create_service_app"]

logger = logging.getLogger("tongban.service")


@dataclass(frozen=True)
class ServiceSpec:
    """How the node launcher and the ``tongban`` command find a service (by entry point).

    Services publish one under the ``tongban.services`` entry-point group, so the kit never
    imports a service to know about it.
    """

    name: str
    app: str  # "package.module:factory"
    settings: str  # "package.module:SettingsClass"
    env_prefix: str
    default_port: int
    migrations: str | None = None  # "package:migrations"; None for stateless services
    database: str | None = None  # database name on a shared server
    start_order: int = 10
    # Operator commands the service adds to `tongban`: name -> "module:main" taking argv.
    commands: dict[str, str] = field(default_factory=dict)
    # Scopes the service needs as an identity client (its service account); the launcher
    # enrols it with a key of its own when not empty.
    client_scopes: tuple[str, ...] = ()


Lifespan = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]


def freeze_startup_objects() -> None:
    """Leave what the process holds once started out of later full collections.

    Everything alive after startup (modules, schemas, metadata, the catalogue, clients) lives
    as long as the process; a full collection would still scan all of it, every time. In
    bench/exchange_routing.py they were 13 pauses of ~130 ms in 15 s (a fifth of the process's
    CPU), each one holding up every request and event. What is garbage now is collected
    first, so only live objects are frozen.
    """
    gc.collect()
    gc.freeze()


def create_base_app(
    *,
    settings: BaseServiceSettings,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    lifespan: Lifespan | None = None,
    version: str = "0.1.0",
    verify_tokens: bool = True,
    body_limits: Mapping[str, int] | None = None,
    app_class: type[FastAPI] = FastAPI,
) -> FastAPI:
    """The kit around some routers: logging, errors, operations endpoints, body limit and
    request context. ``lifespan`` builds the rest and fills ``app.state.readiness``.
    ``app_class``: a ``FastAPI`` subclass to build (the gateway's sends its proxied paths past
    the framework).

    With ``verify_tokens`` (the default) ``tongban_kit.auth.require`` works on every route:
    identity's keys are fetched from the node's ``jwks_url`` and kept fresh, and only tokens
    of the node's issuer and audience are accepted; with ``TONGBAN_DIRECTORY_URL`` also
    visitors' tokens (``tongban_kit.auth.visitors``). Identity, which publishes the keys, wires
    its own and passes ``False``. ``body_limits`` raises the node's body limit on the paths it
    names (regular expressions): an upload route.
    """

    @contextlib.asynccontextmanager
    async def base_lifespan(app: FastAPI) -> AsyncIterator[None]:
        node = settings.node
        configure_logging(settings.service_name, level=node.log_level, fmt=node.log_format)
        verification = (
            token_verification(
                app, jwks_url=node.jwks_url, issuer=node.token_issuer, audience=node.token_audience
            )
            if verify_tokens
            else contextlib.nullcontext()
        )
        visiting = (
            visitor_verification(app, node)
            if verify_tokens and node.directory_url
            else contextlib.nullcontext()
        )
        async with (
            verification as jwks,
            visiting,
            lifespan(app) if lifespan else contextlib.nullcontext(),
        ):
            if jwks is not None:
                # Not ready until identity's keys are held: every request would get a 503.
                app.state.readiness["identity_keys"] = jwks.ready
            logger.info("%s started for node %s", settings.service_name, node.node_code)
            if node.gc_freeze:
                freeze_startup_objects()
            try:
                yield
            finally:
                logger.info("%s stopping", settings.service_name)

    metrics = ServiceMetrics()
    app = app_class(title=title, description=description, version=version, lifespan=base_lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.readiness = {}
    # name -> what /readyz reports about it beside the checks (e.g. the directory's age).
    app.state.readiness_details = {}
    install_problem_handlers(app)
    app.include_router(health_router())
    for router in routers:
        app.include_router(router)
    install_problem_docs(app)
    # Outermost last: the context middleware must see (and stamp) even a 413.
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.node.max_body_bytes, larger=body_limits
    )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app


def create_service_app(
    *,
    settings: ServiceSettings,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    subscriptions: Sequence[Subscription] = (),
    lifespan: Lifespan | None = None,
    version: str = "0.1.0",
    verify_tokens: bool = True,
    body_limits: Mapping[str, int] | None = None,
) -> FastAPI:
    """A stateful service: the base app plus its database, outbox relay and consumers.

    ``lifespan``, if given, runs once ``app.state.engine`` and ``sessionmaker`` exist and
    before the relay and consumers start: a service prepares its own state there.
    """

    @contextlib.asynccontextmanager
    async def service_lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = build_engine(settings.database_url, pool_size=settings.database_pool_size)
        app.state.engine = engine
        app.state.sessionmaker = build_sessionmaker(engine)
        app.state.readiness.update(
            database=database_check(engine),
            broker=broker_check(settings.node.kafka_bootstrap_servers),
        )
        try:
            async with (
                _service_account(app, settings),
                lifespan(app) if lifespan else contextlib.nullcontext(),
                _workers(app, settings, subscriptions),
            ):
                yield
        finally:
            await engine.dispose()

    return create_base_app(
        settings=settings,
        title=title,
        description=description,
        routers=routers,
        lifespan=service_lifespan,
        version=version,
        verify_tokens=verify_tokens,
        body_limits=body_limits,
    )


@contextlib.asynccontextmanager
async def _service_account(app: FastAPI, settings: ServiceSettings) -> AsyncIterator[None]:
    """``app.state.service_tokens``: this service's tokens as an identity client, when its
    settings name a client id and key (``tongban node up`` enrols it); otherwise ``None``."""
    app.state.service_tokens = None
    if settings.client_id is None or settings.client_key_file is None:
        yield
        return
    node = settings.node
    async with httpx.AsyncClient() as client:
        app.state.service_tokens = ServiceTokens(
            token_url=f"{node.identity_url}/oauth/token",
            audience=f"{node.token_issuer}/oauth/token",
            client_id=settings.client_id,
            key=load_service_key(settings.client_key_file),
            http_client=client,
        )
        yield


@contextlib.asynccontextmanager
async def _workers(
    app: FastAPI, settings: ServiceSettings, subscriptions: Sequence[Subscription]
) -> AsyncIterator[None]:
    """The outbox relay and the event consumers, as tasks for the app's lifetime."""
    if not settings.run_workers:
        yield
        return
    node, metrics = settings.node, app.state.metrics
    relay = OutboxRelay(
        engine=app.state.engine,
        node=node,
        metrics=metrics,
        client_id=f"{node.node_code}-{settings.service_name}-relay",
    )
    app.state.relay = relay
    consumers = [
        EventConsumer(
            service=settings.service_name,
            subscription=subscription,
            sessionmaker=app.state.sessionmaker,
            node=node,
            metrics=metrics,
        )
        for subscription in subscriptions
    ]
    tasks = [asyncio.create_task(relay.run(), name="outbox-relay")]
    tasks += [asyncio.create_task(c.run(), name=c.consumer_name) for c in consumers]
    try:
        yield
    finally:
        relay.stop()
        for consumer in consumers:
            consumer.stop()
        for task in tasks:
            task.cancel()
        _, stuck = await asyncio.wait(tasks, timeout=15)
        for task in stuck:
            logger.error("worker %s did not stop within 15 s", task.get_name())
