"""Callers of a whole node in a test: a person who signed up, a department enrolled by the
operator command, their bearer tokens.

Set up on identity's own port, not through the gateway: the gateway's rate limit on
credentials (a burst of ten per address) is for the tests to meet, not their fixtures. A test
that means to go through a gateway, or a node of a federation, says so with an ``Identity``.

For whole-node tests (``tongban_kit.testing.node``): fuzzing, the security suite, the faults,
the federation; and the node bench.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from tongban_kit.testing.node import NodeProcess

__all__ = ["Department", "Identity", "Person", "department", "sign_up"]

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
class Identity:
    """Where a department is enrolled and gets its tokens.

    ``env``: identity's settings, for ``tongban departments create``; ``gateway``: the node's
    gateway, whose token endpoint assertions are addressed to (the audience identity expects);
    ``token_url``: where tokens are asked for (identity's own port, or the gateway's endpoint
    when a test means to go through it); ``keys_dir``: where the department's JWKS is written.
    """

    env: Mapping[str, str]
    gateway: str
    token_url: str
    keys_dir: Path

    @classmethod
    def of(cls, node: NodeProcess, *, through_gateway: bool = False) -> Identity:
        """A node's identity; tokens from its own port unless ``through_gateway``."""
        database = f"{node.database_server}/tongban_identity"
        env = {**node.env, "TONGBAN_IDENTITY_DATABASE_URL": database}
        token_url = (
            f"{node.gateway}/api/identity/oauth/token"
            if through_gateway
            else f"{node.service_url('identity')}/oauth/token"
        )
        return cls(env, node.gateway, token_url, node.state_dir)


@dataclass(frozen=True)
class Department:
    """A department enrolled on a node. ``headers`` carry the access token it got when enrolled;
    ``fresh_headers`` ask for a new one, with a new ``private_key_jwt`` assertion."""

    code: str
    client_id: str
    key: ec.EllipticCurvePrivateKey
    identity: Identity
    headers: dict[str, str]

    def fresh_headers(self) -> dict[str, str]:
        return _token(self.identity, self.code, self.client_id, self.key)


def department(where: NodeProcess | Identity, code: str, scopes: str) -> Department:
    """Enrol a department with ``tongban departments create``, as an operator does, with a key of
    its own, and get its token with ``private_key_jwt`` (RFC 7523). ``where``: a node (tokens
    from identity's own port) or an ``Identity`` saying which settings and token URL to use."""
    identity = where if isinstance(where, Identity) else Identity.of(where)
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": f"{code}-1", "use": "sig"}
    jwks_file = identity.keys_dir / f"{code}-{uuid.uuid4().hex[:8]}-jwks.json"
    jwks_file.write_text(json.dumps({"keys": [jwk]}))
    enrolled = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [
            *(sys.executable, "-m", "tongban_kit.cli", "departments", "create"),
            *("--code", code, "--name", f"{code} department"),
            *("--scopes", scopes, "--jwks-file", str(jwks_file)),
        ],
        env=dict(identity.env),
        capture_output=True,
        text=True,
        timeout=300,  # generous: a loaded machine starts Python slowly
        check=False,
    )
    if enrolled.returncode != 0:
        raise RuntimeError(f"enrolling {code} failed: {enrolled.stderr}")
    client_id = enrolled.stdout.strip()
    headers = _token(identity, code, client_id, key)
    return Department(code, client_id, key, identity, headers)


def _token(
    identity: Identity, code: str, client_id: str, key: ec.EllipticCurvePrivateKey
) -> dict[str, str]:
    now = int(time.time())
    assertion = jwt.encode(
        {"iss": client_id, "sub": client_id, "aud": f"{identity.gateway}/api/identity/oauth/token"}
        | {"iat": now, "exp": now + 60, "jti": uuid.uuid4().hex},
        key,
        algorithm="ES256",
        headers={"kid": f"{code}-1"},
    )
    issued = httpx.post(
        identity.token_url,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
        timeout=_TIMEOUT,
    )
    if issued.status_code != 200:
        raise RuntimeError(f"{code}: no token: {issued.status_code} {issued.text}")
    return {"Authorization": f"Bearer {issued.json()['access_token']}"}
