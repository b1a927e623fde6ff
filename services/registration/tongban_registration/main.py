"""The registration service: business registration and accreditation online."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from prometheus_client import Gauge

from tongban_kit.service import create_service_app
from tongban_registration.acknowledgements.handlers import SUBSCRIPTION
from tongban_registration.applications.endpoints import router as applications_router
from tongban_registration.businesses.change_endpoints import router as changes_router
from tongban_registration.businesses.endpoints import router as businesses_router
from tongban_registration.documents.endpoints import UPLOAD_PATH, submission_router
from tongban_registration.documents.endpoints import router as documents_router
from tongban_registration.documents.service import CHUNK_BYTES
from tongban_registration.exchange_client import ExchangeClient
from tongban_registration.identity_client import IdentityClient
from tongban_registration.licences.endpoints import router as licences_router
from tongban_registration.licensing.endpoints import router as licensing_router
from tongban_registration.licensing.officer_endpoints import router as licensing_officer_router
from tongban_registration.review import service as review
from tongban_registration.review.endpoints import router as review_router
from tongban_registration.settings import RegistrationSettings

logger = logging.getLogger("tongban.registration")


async def _count_overdue(app: FastAPI, every_s: float) -> None:
    """Keep the overdue gauge current for Prometheus (a scrape must not query the database)."""
    while True:
        try:
            async with app.state.sessionmaker() as session:
                app.state.overdue_gauge.set(await review.count_overdue(session))
        except Exception:  # a database blip must not end the loop; the next round retries
            logger.warning("could not count overdue applications", exc_info=True)
        await asyncio.sleep(every_s)


def create_app(settings: RegistrationSettings | None = None) -> FastAPI:
    settings = settings or RegistrationSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.cipher = settings.field_cipher()
        tokens = app.state.service_tokens
        http_client = httpx.AsyncClient()
        app.state.identity = (
            IdentityClient(
                identity_url=settings.node.identity_url, tokens=tokens, client=http_client
            )
            if tokens is not None
            else None
        )
        app.state.exchange = (
            ExchangeClient(exchange_url=settings.exchange_url, tokens=tokens, client=http_client)
            if tokens is not None
            else None
        )
        app.state.overdue_gauge = Gauge(
            "tongban_registration_overdue_applications",
            "Undecided applications past their promised decision date",
            registry=app.state.metrics.registry,
        )
        counter = asyncio.create_task(_count_overdue(app, settings.overdue_refresh_s))
        try:
            yield
        finally:
            counter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await counter
            await http_client.aclose()

    return create_service_app(
        settings=settings,
        title="Tongban registration",
        description="Business registration, accreditation and licences.",
        routers=[
            applications_router,
            documents_router,
            submission_router,
            review_router,
            businesses_router,
            changes_router,
            licences_router,
            licensing_router,
            licensing_officer_router,
        ],
        subscriptions=[SUBSCRIPTION],
        lifespan=lifespan,
        # Uploads stream past the node's body limit, up to the document limit.
        # (The service's own 413, with the document limit, comes first: it counts exactly.)
        body_limits={UPLOAD_PATH: settings.document_max_bytes + CHUNK_BYTES},
    )
