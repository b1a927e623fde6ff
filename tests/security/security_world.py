"""The security suite's world: one node, started the way `make run` starts it, and its callers.

Two applicants (Alice and Bob), market regulation (reviews, raises a person's level of
assurance), and three data-exchange departments: tax and statistics (subscribe, query,
publish) and the grant approver. ``Writes`` counts what every service has stored, so each
test can show that a refused request wrote nothing.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from tongban_kit.testing.callers import Department, Person
from tongban_kit.testing.node import NodeProcess
from tongban_registration.testing import application

PROBLEM = "application/problem+json"
# `make security` runs everything (TONGBAN_SECURITY_FULL=1); `make test` a sample of each kind
# of attack, to stay near a minute.
FULL = os.environ.get("TONGBAN_SECURITY_FULL") == "1"


def sample(cases: list[Any], quick: int = 2) -> list[Any]:
    """All ``cases`` in the full run, the first ``quick`` otherwise."""
    return cases if FULL else cases[:quick]


BUSINESS_REGISTERED = "gov.tongban.registration.business.registered.v1"
DATA_SCOPES = "exchange:subscribe exchange:query exchange:acknowledge exchange:publish"
# The node's accreditation licences (证照分离), both covered by the default business scope
# (软件开发；信息技术咨询服务): one waits for a licensing officer, one is issued at once.
WAITS, INSTANT = "software-services", "it-consulting"
LICENCE_TYPES = [
    {"code": WAITS, "name": "软件服务许可证", "number_prefix": "RJ", "scope_covers": ["软件开发"]},
    {
        "code": INSTANT,
        "name": "信息技术咨询许可证",
        "number_prefix": "XZ",
        "scope_covers": ["信息技术咨询服务"],
        "instant_approval": True,
    },
]
# The smallest document an application takes: told a PDF by its first bytes.
PDF = b"%PDF-1.7\n%security suite\n"

# What each service stores on a caller's behalf; the outbox by its highest sequence number
# (the relay deletes published rows after a while, so a count could fall).
_TABLES = {
    "tongban_identity": ("persons", "person_scopes", "department_clients", "person_keys"),
    "tongban_registration": (
        "applications",
        "application_transitions",
        "name_reservations",
        "businesses",
        "change_filings",
        "idempotency_keys",
        "acknowledgements",
        "licence_applications",
        "accreditation_licences",
        "licence_history",
        "application_documents",
        "document_chunks",
    ),
    "tongban_exchange": (
        "grants",
        "webhook_secrets",
        "datasets",
        "records",
        "deliveries",
        "acknowledgements",
        "replays",
    ),
}


def resident_id(serial: int) -> str:
    """A valid GB 11643 resident ID number (born 1990-01-01 in Futian, Shenzhen)."""
    body = f"44030419900101{serial % 1000:03d}"
    total = sum(int(digit) * (2 ** (17 - i) % 11) for i, digit in enumerate(body))
    return body + "10X98765432"[total % 11]


class Writes:
    """Row counts of what the node stores; ``snapshot()`` before, compare after."""

    def __init__(self, node: NodeProcess) -> None:
        self.server = (
            f"postgresql://postgres@127.0.0.1:{node.env['TONGBAN_EMBEDDED_POSTGRES_PORT']}"
        )

    def execute(self, database: str, statement: str, *arguments: object) -> None:
        """Run one statement on ``database`` (set-up an API cannot do)."""

        async def run() -> None:
            connection = await asyncpg.connect(f"{self.server}/{database}")
            try:
                await connection.execute(statement, *arguments)
            finally:
                await connection.close()

        asyncio.run(run())

    def snapshot(self) -> dict[str, int]:
        return asyncio.run(self._counts())

    async def _counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for database, tables in _TABLES.items():
            connection = await asyncpg.connect(f"{self.server}/{database}")
            try:
                existing = {
                    row["tablename"]
                    for row in await connection.fetch(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    )
                }
                for table in tables:
                    if table in existing:
                        counts[f"{database}.{table}"] = await connection.fetchval(
                            f'SELECT count(*) FROM "{table}"'  # noqa: S608 - names above
                        )
                counts[f"{database}.outbox"] = await connection.fetchval(
                    "SELECT coalesce(max(seq), 0) FROM tongban_outbox"
                )
            finally:
                await connection.close()
        return counts


@dataclass
class World:
    """The node and its callers. ``api`` is the gateway's ``/api``."""

    node: NodeProcess
    api: httpx.Client
    writes: Writes
    alice: Person
    bob: Person
    samr: Department
    tax: Department
    statistics: Department
    customs: Department  # enrolled with the data scopes, but never granted anything

    def headers(self, person: Person) -> dict[str, str]:
        return person.login(self.node)

    def substantial(self, person: Person) -> dict[str, str]:
        """``person``'s headers at level ``substantial`` (market regulation confirms them
        against the household register first)."""
        raised = self.api.post(
            f"/identity/v1/persons/{person.id}/assurance/substantial",
            json={"source": "household-register"},
            headers=self.samr.headers,
        )
        assert raised.status_code == 200, raised.text
        return person.login(self.node)

    def draft(self, person: Person, **changes: Any) -> dict[str, Any]:
        """A draft application of ``person``'s."""
        drafted = self.api.post(
            "/registration/v1/applications",
            json=application(**changes),
            headers=self.headers(person),
        )
        assert drafted.status_code == 201, drafted.text
        return dict(drafted.json())

    def apply_for_licence(self, person: Person, uscc: str, licence_type: str) -> dict[str, Any]:
        """``person``'s application for a licence of ``licence_type`` for business ``uscc``."""
        applied = self.api.post(
            "/registration/v1/licence-applications",
            json={"uscc": uscc, "licence_type": licence_type},
            headers=self.headers(person),
        )
        assert applied.status_code == 201, applied.text
        return dict(applied.json())

    def upload(self, person: Person, application_id: str, content: bytes) -> dict[str, Any]:
        """A document on ``person``'s draft application."""
        uploaded = self.api.post(
            f"/registration/v1/applications/{application_id}/documents",
            params={"filename": "章程.pdf"},
            content=content,
            headers={**self.headers(person), "content-type": "application/pdf"},
        )
        assert uploaded.status_code == 201, uploaded.text
        return dict(uploaded.json())

    def grant(self, holder: Department, fields: list[str]) -> dict[str, Any]:
        """A pull grant of ``holder``'s for new businesses."""
        granted = self.api.post(
            "/exchange/v1/grants",
            json={
                "dataset": BUSINESS_REGISTERED,
                "purpose": f"open the {holder.code} record of every new business",
                "legal_basis": "多证合一 (State Council 2017 No. 41)",
                "fields": fields,
                "delivery": {"mode": "pull"},
            },
            headers=holder.headers,
        )
        assert granted.status_code in (200, 201), granted.text
        return dict(granted.json())


def assert_problem(response: httpx.Response, *statuses: int) -> None:
    """``response`` is a refusal with one of ``statuses``, as RFC 9457 problem+json."""
    assert response.status_code in statuses, f"{response.status_code}: {response.text[:500]}"
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == response.status_code
