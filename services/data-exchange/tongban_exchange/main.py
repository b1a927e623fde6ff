"""The data-exchange service: departments share up-to-date official data."""

from __future__ import annotations

from fastapi import FastAPI

from tongban_exchange.acknowledgements.endpoints import router as acknowledgements_router
from tongban_exchange.records.endpoints import router as records_router
from tongban_exchange.records.handlers import SUBSCRIPTION
from tongban_exchange.settings import ExchangeSettings
from tongban_kit.service import create_service_app


def create_app(settings: ExchangeSettings | None = None) -> FastAPI:
    return create_service_app(
        settings=settings or ExchangeSettings(),
        title="Tongban data exchange",
        description="Catalogue, grants, delivery to departments, queries and the message log.",
        routers=[acknowledgements_router, records_router],
        subscriptions=[SUBSCRIPTION],
    )
