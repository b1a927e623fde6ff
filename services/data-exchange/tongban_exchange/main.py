"""The data-exchange service: departments share up-to-date official data."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from tongban_exchange.acknowledgements.endpoints import router as acknowledgements_router
from tongban_exchange.catalogue import service as catalogue
from tongban_exchange.catalogue.endpoints import router as catalogue_router
from tongban_exchange.delivery.dispatcher import Dispatcher
from tongban_exchange.delivery.endpoints import router as deliveries_router
from tongban_exchange.delivery.wakeups import PullWakeups
from tongban_exchange.grants.endpoints import router as grants_router
from tongban_exchange.log.checkpoints import Checkpointer
from tongban_exchange.log.endpoints import router as log_router
from tongban_exchange.national.endpoints import router as national_router
from tongban_exchange.national.feed import FeedReader
from tongban_exchange.national.forwarder import Forwarder
from tongban_exchange.national.link import CentralLink
from tongban_exchange.records.endpoints import datasets_router as record_datasets_router
from tongban_exchange.records.endpoints import router as records_router
from tongban_exchange.replays.endpoints import router as replays_router
from tongban_exchange.routing.consumer import RoutingConsumer
from tongban_exchange.routing.pseudonyms import IdentityPseudonyms
from tongban_exchange.runtime import Exchange, ExchangeMetrics, data_cipher
from tongban_exchange.settings import ExchangeSettings
from tongban_kit.auth.replay import replay_guard
from tongban_kit.service import create_service_app


def create_app(settings: ExchangeSettings | None = None) -> FastAPI:
    settings = settings or ExchangeSettings()
    exchange = Exchange(settings=settings, cipher=data_cipher(settings))
    exchange.extra["pseudonyms"] = IdentityPseudonyms(exchange)
    if settings.national_directory_url is not None:
        exchange.link = CentralLink(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        exchange.state = app.state
        async with app.state.sessionmaker() as session, session.begin():
            await catalogue.seed(session)
        # Long polls are served whether or not workers run here: every process listens.
        wakeups = app.state.pull_wakeups = PullWakeups(settings.database_url, exchange.pulls)
        tasks = [asyncio.create_task(wakeups.run(), name="exchange-pull-wakeups")]
        async with httpx.AsyncClient(timeout=10.0) as http:
            exchange.http = http
            routing = RoutingConsumer(exchange, app.state.sessionmaker, app.state.metrics)
            if settings.run_workers:
                dispatcher = Dispatcher(exchange, app.state.sessionmaker)
                checkpointer = Checkpointer(exchange, app.state.sessionmaker)
                tasks += [
                    asyncio.create_task(routing.run(), name="exchange-routing"),
                    asyncio.create_task(dispatcher.run(), name="exchange-dispatcher"),
                    asyncio.create_task(checkpointer.run(), name="exchange-checkpoints"),
                ]
            link = exchange.link
            if link is not None:
                link.replays = replay_guard(
                    settings.redis_url, node=settings.node, scope="exchange"
                )
                await link.refresh(http, timeout_s=3.0)
                tasks.append(asyncio.create_task(link.refresh_forever(http), name="directory"))
                if settings.run_workers and not link.is_central:
                    forwarder = Forwarder(exchange, app.state.sessionmaker, link)
                    reader = FeedReader(exchange, app.state.sessionmaker, link)
                    tasks.append(asyncio.create_task(forwarder.run(), name="exchange-national"))
                    tasks.append(asyncio.create_task(reader.run(), name="exchange-feed"))
            try:
                yield
            finally:
                routing.stop()
                for task in tasks:
                    task.cancel()
                await asyncio.wait(tasks, timeout=10)
                if link is not None:
                    await link.replays.aclose()

    app = create_service_app(
        settings=settings,
        title="Tongban data exchange",
        description="Catalogue, grants, delivery to departments, queries and the message log.",
        routers=[
            acknowledgements_router,
            catalogue_router,
            grants_router,
            deliveries_router,
            records_router,
            record_datasets_router,
            log_router,
            national_router,
            replays_router,
        ],
        lifespan=lifespan,
    )
    exchange.metrics = ExchangeMetrics(app.state.metrics)
    if exchange.link is not None:
        app.state.readiness_details["national"] = exchange.link.details
    app.state.exchange = exchange
    return app
