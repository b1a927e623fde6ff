"""The identity service: who a caller is, how sure we are, what they may do."""

from __future__ import annotations

from fastapi import FastAPI

from tongban_identity.legal_persons.endpoints import router as legal_persons_router
from tongban_identity.legal_persons.handlers import SUBSCRIPTION
from tongban_identity.persons.endpoints import router as persons_router
from tongban_identity.settings import IdentitySettings
from tongban_kit.service import create_service_app


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    return create_service_app(
        settings=settings or IdentitySettings(),
        title="Tongban identity",
        description="Persons, legal persons, departments, tokens and signatures.",
        routers=[persons_router, legal_persons_router],
        subscriptions=[SUBSCRIPTION],
    )
