"""A licence prerequisite read from another department's records, through a real
data-exchange on a real port: registration queries it as its service account
(`svc-registration`, `exchange:query`) under a grant, like any department."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tongban_exchange.main import create_app as create_exchange
from tongban_exchange.settings import ExchangeSettings
from tongban_exchange.testing import grant
from tongban_kit.auth.testing import LocalIssuer
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import running_app, serving_app
from tongban_registration.exchange_client import ExchangeClient
from tongban_registration.main import create_app
from tongban_registration.settings import RegistrationSettings
from tongban_registration.testing import Flow

TRAINING = "gov.tongban.health.training.record.v1"
FOOD_OPERATION = {
    "code": "food-operation",
    "name": "食品经营许可证",
    "number_prefix": "JY",
    "scope_covers": ["食品销售"],
    "department_checks": [
        {
            "dataset": TRAINING,
            "field": "passed",
            "equals": True,
            "description": "食品安全培训考核合格",
        }
    ],
}


def _department(issuer: LocalIssuer, code: str, scope: str) -> dict[str, str]:
    token = issuer.mint(
        drop=("acr", "amr", "auth_time"),
        sub=code,
        client_id=code,
        department=code,
        department_name=code,
        scope=scope,
    )
    return {"Authorization": f"Bearer {token}"}


class _ServiceAccount:
    """Registration's bearer tokens as identity would issue them to `svc-registration`."""

    def __init__(self, issuer: LocalIssuer) -> None:
        self.issuer = issuer

    async def headers(self) -> dict[str, str]:
        return _department(self.issuer, "svc-registration", "exchange:query")

    def forget(self) -> None:
        pass


@pytest.fixture
async def exchange_url(make_database: Any, node_settings: NodeSettings) -> AsyncIterator[str]:
    database = await make_database("tongban_exchange:migrations")
    settings = ExchangeSettings(database_url=database, node=node_settings, run_workers=False)
    async with serving_app(create_exchange(settings)) as url:
        yield url


@pytest.fixture
async def flow_with_exchange(
    database: str,
    node_settings: NodeSettings,
    exchange_url: str,
    token_issuer: LocalIssuer,
    applicant: dict[str, str],
    officer: dict[str, str],
) -> AsyncIterator[Flow]:
    settings = RegistrationSettings(
        database_url=database,
        node=node_settings,
        run_workers=False,
        licence_types=[FOOD_OPERATION],
        exchange_url=exchange_url,
    )
    app = create_app(settings)
    async with running_app(app) as client, httpx.AsyncClient() as http:
        app.state.exchange = ExchangeClient(
            exchange_url=exchange_url,
            tokens=_ServiceAccount(token_issuer),  # type: ignore[arg-type]
            client=http,
        )
        yield Flow(client, applicant, officer)


async def test_a_department_record_prerequisite_is_read_through_data_exchange(
    flow_with_exchange: Flow,
    exchange_url: str,
    token_issuer: LocalIssuer,
    new_application: Callable[..., dict[str, Any]],
) -> None:
    flow = flow_with_exchange
    uscc = (await flow.approved(new_application(business_scope="食品销售")))["uscc"]
    check = f"/v1/businesses/{uscc}/licence-types/food-operation/prerequisites"
    health = _department(token_issuer, "health", "exchange:publish")
    async with httpx.AsyncClient(base_url=exchange_url) as exchange:
        added = await exchange.post(
            "/v1/datasets",
            json={
                "name": TRAINING,
                "owner": "health",
                "title": "食品安全培训考核",
                "schema": {
                    "type": "object",
                    "required": ["passed"],
                    "properties": {"passed": {"type": "boolean"}},
                },
                "sharing": "unconditional",
                "scope": "node",
            },
            headers={"Authorization": f"Bearer {token_issuer.mint(scope='tongban:admin')}"},
        )
        assert added.status_code == 201, added.text
        no_grant = (await flow.client.get(check, headers=flow.applicant)).json()
        await grant(
            exchange,
            _department(token_issuer, "svc-registration", "exchange:subscribe"),
            dataset=TRAINING,
            fields=["passed"],
        )
        no_record = (await flow.client.get(check, headers=flow.applicant)).json()
        record = f"/v1/datasets/{TRAINING}/records/{uscc}"
        failed = await exchange.put(
            record, json={"version": 1, "data": {"passed": False}}, headers=health
        )
        refused = await flow.client.post(
            "/v1/licence-applications",
            json={"uscc": uscc, "licence_type": "food-operation"},
            headers=flow.applicant,
        )
        passed = await exchange.put(
            record, json={"version": 2, "data": {"passed": True}}, headers=health
        )
        met = (await flow.client.get(check, headers=flow.applicant)).json()

    assert "no grant" in no_grant["unmet"][0]["detail"]
    assert "holds no record" in no_record["unmet"][0]["detail"]
    assert (failed.status_code, passed.status_code) == (201, 200)
    assert refused.status_code == 409
    assert refused.json()["unmet_prerequisites"] == [
        {
            "prerequisite": "department_record",
            "detail": f"食品安全培训考核合格: {TRAINING} says passed is not True",
        }
    ]
    assert met == {"licence_type": "food-operation", "met": True, "unmet": []}
