"""The identity service: who a caller is, how sure we are, what they may do."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from tongban_identity.keys import service as keys_service
from tongban_identity.keys.endpoints import router as keys_router
from tongban_identity.keys.sealing import KeyVault, key_cipher
from tongban_identity.legal_persons.endpoints import router as legal_persons_router
from tongban_identity.legal_persons.handlers import SUBSCRIPTION
from tongban_identity.persons.endpoints import router as persons_router
from tongban_identity.persons.protection import PersonalData
from tongban_identity.settings import IdentitySettings
from tongban_identity.tokens.endpoints import router as discovery_router
from tongban_kit.crypto import PasswordHasher
from tongban_kit.service import create_service_app


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    settings = settings or IdentitySettings()
    app = create_service_app(
        settings=settings,
        title="Tongban identity",
        description="Persons, legal persons, departments, tokens and signatures.",
        routers=[persons_router, legal_persons_router, keys_router, discovery_router],
        subscriptions=[SUBSCRIPTION],
    )
    app.state.personal_data = PersonalData.from_settings(
        settings.pii_keys, settings.blind_index_key
    )
    app.state.password_hasher = PasswordHasher()
    _start_with_signing_keys(app, settings)
    return app


def _start_with_signing_keys(app: FastAPI, settings: IdentitySettings) -> None:
    """Run the kit's lifespan, then make sure the signing keys are ready before serving.

    ``create_service_app`` takes no lifespan of the service's own yet, so this wraps the one
    it built; with such a parameter this becomes that lifespan.
    """
    kit_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with kit_lifespan(app):
            vault = KeyVault(key_cipher(settings.key_encryption_key))
            await keys_service.prepare_keys(
                app.state.sessionmaker, vault=vault, rotation_days=settings.key_rotation_days
            )
            app.state.key_vault = vault
            yield

    app.router.lifespan_context = lifespan
