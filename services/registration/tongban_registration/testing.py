"""Test drivers for registration: a valid application body, callers' tokens, and a client
that walks an application through the API. Shipped with the package (like the kit's testing
modules) so the service's tests, the whole-node test and the bench share one copy.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx

from tongban_kit.auth.testing import LocalIssuer

__all__ = ["APPLICATION", "Flow", "Tokens", "application"]

APPLICATION: dict[str, Any] = {
    "name": "深圳市腾飞科技有限公司",
    "entity_type": "limited_company",
    "registered_capital": {"amount": "1000000.00", "currency": "CNY"},
    "address": {"line": "南山区科技园南区1号", "division_code": "440305"},
    "business_scope": "软件开发；信息技术咨询服务",
    "legal_representative": {"name": "张三", "resident_id": "11010519491231002X"},
    "investors": [
        {"name": "张三", "kind": "natural_person", "share": "60"},
        {"name": "李四", "kind": "natural_person", "share": "40"},
    ],
}


def application(**changes: Any) -> dict[str, Any]:
    """A complete, valid application body with ``changes`` applied (a fresh copy)."""
    body = copy.deepcopy(APPLICATION)
    body.update(changes)
    return body


class Tokens:
    """Headers for the callers registration knows."""

    def __init__(self, issuer: LocalIssuer) -> None:
        self.issuer = issuer

    def person(self, sub: str | None = None, *, acr: str = "substantial") -> dict[str, str]:
        token = self.issuer.mint(sub=sub or str(uuid.uuid4()), acr=acr, scope="")
        return {"Authorization": f"Bearer {token}"}

    def officer(self, sub: str = "officer-1", *, node: str = "440300") -> dict[str, str]:
        token = self.issuer.mint(sub=sub, acr="substantial", scope="registration:review", node=node)
        return {"Authorization": f"Bearer {token}"}


class Flow:
    """Drives an application through the HTTP API, asserting each step succeeded."""

    def __init__(
        self, client: httpx.AsyncClient, applicant: dict[str, str], officer: dict[str, str]
    ):
        self.client, self.applicant, self.officer = client, applicant, officer

    async def draft(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post("/v1/applications", json=body, headers=self.applicant)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def submit(self, application_id: str) -> dict[str, Any]:
        response = await self.client.post(
            f"/v1/applications/{application_id}/submit", headers=self.applicant
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def claim(self, application_id: str) -> dict[str, Any]:
        response = await self.client.post(
            f"/v1/review/applications/{application_id}/claim", headers=self.officer
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def decide(self, application_id: str, **decision: Any) -> httpx.Response:
        return await self.client.post(
            f"/v1/review/applications/{application_id}/decision",
            json=decision,
            headers=self.officer,
        )

    async def approved(self, body: dict[str, Any]) -> dict[str, Any]:
        """Draft, submit, claim and approve; the approved application."""
        draft = await self.draft(body)
        await self.submit(draft["id"])
        await self.claim(draft["id"])
        response = await self.decide(draft["id"], decision="approve")
        assert response.status_code == 200, response.text
        return dict(response.json())
