"""Test and bench support: a department (or any OAuth client) enrolled with a fresh P-256 key,
and the ``private_key_jwt`` client assertions it signs, the way a department's software does.
Shipped with the package, like ``sessions.testing``, so tests and benches share one copy."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI

from tongban_identity.departments import service
from tongban_identity.departments.assertions import CLIENT_ASSERTION_TYPE
from tongban_identity.departments.schemas import DepartmentCreate
from tongban_identity.signatures.testing import public_jwk

__all__ = ["EnrolledClient", "enrol_client"]


@dataclass(frozen=True)
class EnrolledClient:
    client_id: str
    code: str
    kid: str
    private_key: ec.EllipticCurvePrivateKey

    def assertion(self, audience: str, *, lifetime_s: int = 120) -> str:
        """A fresh ES256 client assertion (RFC 7523) for ``audience``, usable once."""
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "iat": now,
            "exp": now + lifetime_s,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.private_key, algorithm="ES256", headers={"kid": self.kid})

    def authentication(self, audience: str) -> dict[str, str]:
        """The form parameters that authenticate this client (``private_key_jwt``)."""
        return {
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": self.assertion(audience),
        }


async def enrol_client(app: FastAPI, code: str, scopes: Sequence[str]) -> EnrolledClient:
    """Enrol ``code`` in the running identity ``app`` with a new key, as an operator would."""
    key = ec.generate_private_key(ec.SECP256R1())
    kid = f"{code}-1"
    enrolment = DepartmentCreate(
        code=code,
        name=f"{code} bureau",
        scopes=list(scopes),
        jwks={"keys": [{**public_jwk(key), "kid": kid}]},
    )
    node = app.state.settings.node.node_code
    async with app.state.sessionmaker() as session, session.begin():
        client = await service.create_department(session, enrolment=enrolment, node=node)
    return EnrolledClient(client.client_id, code, kid, key)
