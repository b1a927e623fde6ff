"""A real identity for ``exchange_routing.py --pseudonyms``.

Identity runs in a child process (so its CPU is its own row), served on uvloop with its own
migrated database on the bench's PostgreSQL. The three departments and data-exchange's service
account are enrolled there as ``services/data-exchange/tests/test_pseudonyms.py`` enrols them
(``python -m tongban_identity.departments``), so data-exchange gets service tokens and asks
``POST /v1/pairwise/subjects/batch`` once per routing batch for every new (department, person).
Identity's node trusts the bench's ``LocalIssuer`` as every other service does; the client
assertion is audienced to ``<token_issuer>/oauth/token``, which is what identity checks.

With it, every event names a new person (``legal_representative(n, people=True)``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import uvloop
from _common import MP, Infra, drop_database, quiet_logs
from sqlalchemy.engine import make_url

from tongban_identity.main import create_app
from tongban_identity.pairwise.derivation import PSEUDONYM_PATTERN
from tongban_identity.sessions.testing import resident_id
from tongban_identity.settings import IdentitySettings
from tongban_kit.auth.client import generate_service_key
from tongban_kit.db.migrations import ensure_database, upgrade
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import serving_app

DEPARTMENTS = ("tax", "social-security", "statistics")
SAME_PERSON = "11010519491231002X"
_PSEUDONYM = re.compile(PSEUDONYM_PATTERN)
_BATCH_ROUTE = "/v1/pairwise/subjects/batch"


def legal_representative(n: int, *, people: bool) -> dict[str, str]:
    """Event ``n``'s legal representative: always the same person, or (``people``) a distinct
    valid resident ID per ``n`` >= -1000 (a birth day per thousand, the sequence within it)."""
    if not people:
        return {"name": "张三", "resident_id": SAME_PERSON}
    m = n + 1000
    birth = dt.date(1950, 1, 1) + dt.timedelta(days=m // 1000)
    return {"name": f"法人{n}", "resident_id": resident_id(m % 1000, birth=f"{birth:%Y%m%d}")}


class Disclosures:
    """What every 100th delivery of each mode says of its legal representative's resident ID:
    ``counts[mode]`` of ``pseudonym``, ``withheld`` and ``resident ID`` (anything but a
    pseudonym or nothing counts as that: a leak)."""

    def __init__(self, received: dict[str, dict[str, float]]) -> None:
        self.received = received  # mode -> event ids that arrived
        self.counts: dict[str, dict[str, int]] = {}

    def of(self, mode: str, data: Callable[[], dict[str, Any]]) -> None:
        """Called on each arrival in ``mode``; ``data()`` parses the delivery when sampled."""
        if len(self.received[mode]) % 100 != 1:
            return
        value = (data().get("legal_representative") or {}).get("resident_id")
        kind = (
            "withheld"
            if value is None
            else "pseudonym"
            if _PSEUDONYM.fullmatch(value)
            else "resident ID"
        )
        seen = self.counts.setdefault(mode, {})
        seen[kind] = seen.get(kind, 0) + 1


class Identity:
    """Identity served in a child process, with the departments and exchange enrolled."""

    def __init__(self, database: str, keys: Path, client_id: str, conn: Connection) -> None:
        self.database = database
        self.keys = keys
        self.client_id = client_id
        self.url = ""
        self._conn = conn
        self._process: Any = None

    @classmethod
    async def start(cls, infra: Infra, node: NodeSettings) -> Identity:
        database = await _identity_database(infra)
        keys = Path(tempfile.mkdtemp(prefix="tongban-bench-identity-"))
        jwks = keys / "jwks.json"
        jwks.write_text(json.dumps({"keys": [_department_jwk()]}))
        generate_service_key(keys / "exchange.pem")
        *_, client_id = await asyncio.gather(
            *(
                _enrol(
                    database,
                    "create",
                    "--code",
                    code,
                    "--name",
                    code,
                    "--jwks-file",
                    str(jwks),
                    "--scopes",
                    "exchange:subscribe",
                )
                for code in DEPARTMENTS
            ),
            _enrol(
                database,
                "service-account",
                "--service",
                "exchange",
                "--key-file",
                str(keys / "exchange.pem"),
                "--scopes",
                "identity:pairwise:derive",
            ),
        )
        parent, child = MP.Pipe()
        identity = cls(database, keys, client_id, parent)
        identity._process = MP.Process(
            target=_identity_main, args=(node.model_dump(), database, child), daemon=True
        )
        identity._process.start()
        if not await asyncio.to_thread(parent.poll, 120):
            raise SystemExit("identity did not start in two minutes")
        identity.url = parent.recv()
        return identity

    def enrol(self, node: NodeSettings) -> tuple[NodeSettings, dict[str, Any]]:
        """Data-exchange's node settings (``identity_url`` this identity) and its settings as
        identity's client (``client_id``, ``client_key_file``)."""
        print(f"[run] identity at {self.url}, every event a new person", flush=True)
        enrolment = {"client_id": self.client_id, "client_key_file": self.keys / "exchange.pem"}
        return node.model_copy(update={"identity_url": self.url}), enrolment

    def labels(self) -> dict[int, str]:
        return {self._process.pid or 0: "identity"}

    async def batches(self) -> tuple[int, float]:
        """Pairwise batch requests identity has answered so far, and their seconds in all."""
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"{self.url}/metrics")).text
        count, seconds = 0, 0.0
        for line in text.splitlines():
            if f'route="{_BATCH_ROUTE}"' not in line:
                continue
            name, value = line.rsplit(" ", 1)
            if name.startswith("tongban_http_requests_total{"):
                count += int(float(value))
            elif name.startswith("tongban_http_request_duration_seconds_sum{"):
                seconds += float(value)
        return count, seconds

    async def stop(self) -> None:
        self._conn.send("exit")
        await asyncio.to_thread(self._process.join, 20)
        await drop_database(self.database)
        shutil.rmtree(self.keys, ignore_errors=True)


def pseudonym_rows(
    batches: list[tuple[int, float]], samples: dict[str, dict[str, int]], events: int
) -> list[tuple[str, str]]:
    """Rows of identity's batch requests during the run (``batches``: the counts before and
    after, if identity ran) and of the sampled deliveries."""
    rows = []
    if batches:
        (count_0, seconds_0), (count_1, seconds_1) = batches
        count, seconds = count_1 - count_0, seconds_1 - seconds_0
        each = f"{events * len(DEPARTMENTS) / count:,.0f} pairs" if count else "-"
        served = f"{seconds / count * 1000:.1f} ms" if count else "-"
        rows.append(
            ("identity batches", f"{count:,} requests ({each} each on average), {served} each")
        )
    for mode, seen in samples.items():
        rows.append(
            (f"{mode} sampled", ", ".join(f"{k} {v:,}" for k, v in sorted(seen.items())) or "-")
        )
    return rows


def _department_jwk() -> dict[str, Any]:
    """A department key for identity's records; the bench's departments sign nothing there."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from jwt.algorithms import ECAlgorithm

    key = ec.generate_private_key(ec.SECP256R1())
    return {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k1", "use": "sig"}


async def _enrol(database: str, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "tongban_identity.departments", *args),
        env={**os.environ, "TONGBAN_IDENTITY_DATABASE_URL": database},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    if process.returncode != 0:
        raise SystemExit(f"identity enrolment {args[:3]} failed: {err.decode()[-500:]}")
    return out.decode().strip()


async def _identity_database(infra: Infra) -> str:
    url = make_url(infra.database_url)
    database = url.set(database=f"{url.database}_identity").render_as_string(hide_password=False)
    await ensure_database(database)
    await asyncio.to_thread(upgrade, "tongban_identity:migrations", database)
    return database


def _identity_main(node_fields: dict[str, Any], database: str, conn: Connection) -> None:
    quiet_logs()
    settings = IdentitySettings(
        database_url=database, node=NodeSettings(**node_fields), run_workers=False
    )
    uvloop.run(_identity(settings, conn))


async def _identity(settings: IdentitySettings, conn: Connection) -> None:
    async with serving_app(create_app(settings)) as url:
        conn.send(url)
        await asyncio.to_thread(conn.recv)  # "exit", once the parent has read the CPU counters
