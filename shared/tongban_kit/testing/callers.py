"""Callers of a whole node in a test: a person who signed up, a department enrolled by the
operator command, their bearer tokens.

Set up on identity's own port, not through the gateway: the gateway's rate limit on
credentials (a burst of ten per address) is for the tests to meet, not their fixtures.

For whole-node tests (``tongban_kit.testing.node``): fuzzing, the security suite, the faults.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from tongban_kit.testing.node import NodeProcess

__all__ = ["Department", "Person", "department", "sign_up"]

_TIMEOUT = 30


@dataclass(frozen=True)
class Person:
    """A person who signed up; ``headers`` carry a fresh access token at each ``login``."""

    id: str
    resident_id: str
    password: str

    def login(self, node: NodeProcess) -> dict[str, str]:
        """Bearer headers of a new sign-in (at the person's level of assurance now)."""
        signed_in = httpx.post(
            f"{node.service_url('identity')}/v1/login",
            json={"resident_id": self.resident_id, "password": self.password},
            timeout=_TIMEOUT,
        )
        assert signed_in.status_code == 200, signed_in.text
        return {"Authorization": f"Bearer {signed_in.json()['access_token']}"}


def sign_up(
    node: NodeProcess, *, resident_id: str, name: str, phone: str = "13800138000"
) -> Person:
    """Sign a person up (``POST /v1/persons``)."""
    password = f"correct horse battery staple {resident_id}"
    created = httpx.post(
        f"{node.service_url('identity')}/v1/persons",
        json={"resident_id": resident_id, "name": name, "phone": phone, "password": password},
        timeout=_TIMEOUT,
    )
    assert created.status_code == 201, created.text
    return Person(id=created.json()["id"], resident_id=resident_id, password=password)


@dataclass(frozen=True)
class Department:
    code: str
    client_id: str
    headers: dict[str, str]


def department(node: NodeProcess, code: str, scopes: str) -> Department:
    """Enrol a department with ``tongban departments create``, as an operator does, and get its
    token with ``private_key_jwt`` (RFC 7523)."""
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": f"{code}-1", "use": "sig"}
    jwks_file = node.state_dir / f"{code}-jwks.json"
    jwks_file.write_text(json.dumps({"keys": [jwk]}))
    server = f"127.0.0.1:{node.env['TONGBAN_EMBEDDED_POSTGRES_PORT']}"
    env = {
        **node.env,
        "TONGBAN_IDENTITY_DATABASE_URL": f"postgresql+asyncpg://postgres@{server}/tongban_identity",
    }
    enrolled = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [
            *(sys.executable, "-m", "tongban_kit.cli", "departments", "create"),
            *("--code", code, "--name", f"{code} department"),
            *("--scopes", scopes, "--jwks-file", str(jwks_file)),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert enrolled.returncode == 0, enrolled.stderr
    client_id = enrolled.stdout.strip()
    token_url = f"{node.gateway}/api/identity/oauth/token"
    now = int(time.time())
    assertion = jwt.encode(
        {"iss": client_id, "sub": client_id, "aud": token_url, "iat": now, "exp": now + 60}
        | {"jti": uuid.uuid4().hex},
        key,
        algorithm="ES256",
        headers={"kid": f"{code}-1"},
    )
    issued = httpx.post(
        f"{node.service_url('identity')}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
        timeout=_TIMEOUT,
    )
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    return Department(code, client_id, {"Authorization": f"Bearer {token}"})
