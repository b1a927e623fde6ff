"""The registration service: business registration and accreditation online."""

from __future__ import annotations

from fastapi import FastAPI

from tongban_kit.service import create_service_app
from tongban_registration.acknowledgements.handlers import SUBSCRIPTION
from tongban_registration.businesses.endpoints import router as businesses_router
from tongban_registration.settings import RegistrationSettings


def create_app(settings: RegistrationSettings | None = None) -> FastAPI:
    return create_service_app(
        settings=settings or RegistrationSettings(),
        title="Tongban registration",
        description="Business registration, accreditation and licences.",
        routers=[businesses_router],
        subscriptions=[SUBSCRIPTION],
    )
