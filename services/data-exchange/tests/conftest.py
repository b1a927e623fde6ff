"""Data-exchange test fixtures: the service on a fresh database, department and operator
tokens, and a department's webhook receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tongban_exchange.main import create_app
from tongban_exchange.settings import ExchangeSettings
from tongban_exchange.testing import ALL_SCOPES, Tokens, WebhookReceiver
from tongban_kit.auth.testing import LocalIssuer
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import running_app


@pytest.fixture
async def database(make_database) -> str:  # type: ignore[no-untyped-def]
    url: str = await make_database("tongban_exchange:migrations")
    return url


@pytest.fixture
def as_department(token_issuer: LocalIssuer) -> Tokens:
    """Headers for a department's client-credentials token."""

    def headers(code: str, scope: str = ALL_SCOPES) -> dict[str, str]:
        client_id = f"dept-{code}-0a1b2c3d4e5f"
        token = token_issuer.mint(
            drop=("acr", "amr", "auth_time"),
            sub=client_id,
            client_id=client_id,
            department=code,
            department_name=code,
            scope=scope,
        )
        return {"Authorization": f"Bearer {token}"}

    return headers


@pytest.fixture
def as_operator(token_issuer: LocalIssuer) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_issuer.mint(scope='tongban:admin', sub='op-1')}"}


@pytest.fixture
def exchange_settings(database: str, node_settings: NodeSettings) -> ExchangeSettings:
    return ExchangeSettings(
        database_url=database,
        node=node_settings,
        webhook_backoff_initial_s=0.2,
        webhook_backoff_max_s=0.5,
        webhook_timeout_s=2.0,
    )


@pytest.fixture
async def exchange(exchange_settings: ExchangeSettings) -> AsyncIterator[httpx.AsyncClient]:
    """Data-exchange with its consumers and dispatcher running; no default caller."""
    async with running_app(create_app(exchange_settings)) as client:
        yield client


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    hook = WebhookReceiver()
    await hook.start()
    try:
        yield hook
    finally:
        await hook.stop()
