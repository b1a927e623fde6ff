"""The identity service: who a caller is, how sure we are, what they may do."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI

from tongban_identity.departments.directory import ClientDirectory
from tongban_identity.departments.endpoints import router as departments_router
from tongban_identity.departments.own_tokens import own_token_verification
from tongban_identity.keys import service as keys_service
from tongban_identity.keys.endpoints import router as keys_router
from tongban_identity.keys.sealing import KeyVault, key_cipher
from tongban_identity.legal_persons.endpoints import me_router as acting_router
from tongban_identity.legal_persons.endpoints import router as legal_persons_router
from tongban_identity.legal_persons.handlers import subscription as legal_persons_subscription
from tongban_identity.nodes.endpoints import router as nodes_router
from tongban_identity.pairwise.derivation import Pseudonyms
from tongban_identity.pairwise.endpoints import router as pairwise_router
from tongban_identity.persons.admin_endpoints import router as persons_admin_router
from tongban_identity.persons.endpoints import router as persons_router
from tongban_identity.persons.protection import PersonalData
from tongban_identity.sessions.endpoints import oauth_router
from tongban_identity.sessions.endpoints import router as sessions_router
from tongban_identity.settings import IdentitySettings
from tongban_identity.signatures import document_keys
from tongban_identity.signatures.endpoints import router as signatures_router
from tongban_identity.tokens.endpoints import router as discovery_router
from tongban_kit.crypto import PasswordHasher
from tongban_kit.service import create_service_app


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    settings = settings or IdentitySettings()
    personal_data = PersonalData.from_settings(settings.pii_keys, settings.blind_index_key)
    app = create_service_app(
        settings=settings,
        title="Tongban identity",
        description="Persons, legal persons, departments, tokens and signatures.",
        routers=[
            persons_router,
            persons_admin_router,
            legal_persons_router,
            acting_router,
            keys_router,
            discovery_router,
            departments_router,
            pairwise_router,
            sessions_router,
            oauth_router,
            signatures_router,
            nodes_router,
        ],
        subscriptions=[legal_persons_subscription(personal_data)],
        lifespan=_identity_lifespan(settings),
        verify_tokens=False,  # identity checks its own tokens: departments.own_tokens
    )
    app.state.personal_data = personal_data
    app.state.password_hasher = PasswordHasher()
    app.state.pseudonyms = Pseudonyms.from_settings(settings.pairwise_key)
    # The token endpoint's copy of department clients, checked against each row's version.
    app.state.client_directory = ClientDirectory()
    return app


def _identity_lifespan(
    settings: IdentitySettings,
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """Make sure the signing keys are ready (and rotated if due) before serving."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cipher = key_cipher(settings.key_encryption_key)
        vault = KeyVault(cipher)
        await keys_service.prepare_keys(
            app.state.sessionmaker, vault=vault, rotation_days=settings.key_rotation_days
        )
        app.state.key_vault = vault
        # Document keys get a vault of their own: each keeps one unsealed key in memory.
        document_vault = KeyVault(cipher)
        await document_keys.prepare_document_key(
            app.state.sessionmaker,
            vault=document_vault,
            rotation_days=settings.document_key_rotation_days,
        )
        app.state.document_key_vault = document_vault
        # Identity's own endpoints check tokens too (require()): against its own JWKS.
        async with own_token_verification(app, settings):
            yield

    return lifespan
