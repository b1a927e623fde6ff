"""Test support for services that check tokens: an issuer of their own, on a real HTTP port.

``LocalIssuer`` holds ES256 key pairs, mints access tokens shaped like identity's and serves
its JWKS from a small HTTP server in a thread, counting requests. A service's tests point
``token_verification(jwks_url=issuer.jwks_url, issuer=issuer.issuer, audience=...)`` at it::

    with LocalIssuer() as issuer:
        token = issuer.mint(scope="registration:apply", acr="substantial")
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from tongban_kit.auth.verify import ACCESS_TOKEN_ALGORITHM, ACCESS_TOKEN_TYPE

__all__ = ["LocalIssuer", "LocalKey"]


class LocalKey:
    """One ES256 key pair with a random kid."""

    def __init__(self, kid: str | None = None) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.kid = kid or uuid.uuid4().hex

    @property
    def jwk(self) -> dict[str, Any]:
        """The public JWK as identity publishes it."""
        public = ECAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "alg": ACCESS_TOKEN_ALGORITHM, "use": "sig"}

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class LocalIssuer:
    """An issuer for tests; use it as a context manager to run its JWKS server.

    ``status`` set to anything but 200 makes the server fail (identity down or broken);
    ``requests`` counts the JWKS requests it answered.
    """

    def __init__(
        self,
        *,
        issuer: str = "https://identity.test/api/identity",
        audience: str = "tongban:440300",
        node: str = "440300",
    ) -> None:
        self.issuer, self.audience, self.node = issuer, audience, node
        self.key = LocalKey()
        self.published: list[dict[str, Any]] = [self.key.jwk]
        self.status = 200
        self.requests = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        port = self._server.server_address[1]
        self.jwks_url = f"http://127.0.0.1:{port}/.well-known/jwks.json"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def publish(self, *keys: LocalKey) -> None:
        """Add keys to the published set (a rotation as verifiers see it)."""
        self.published += [key.jwk for key in keys]

    def claims(self, *, drop: tuple[str, ...] = (), **overrides: Any) -> dict[str, Any]:
        """Claims as identity writes them, with ``overrides`` applied and ``drop`` left out."""
        now = int(time.time())
        values: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "person-7f3a",
            "aud": self.audience,
            "exp": now + 300,
            "iat": now,
            "nbf": now,
            "jti": uuid.uuid4().hex,
            "scope": "",
            "acr": "low",
            "amr": ["pwd"],
            "auth_time": now,
            "node": self.node,
        }
        values.update(overrides)
        return {name: value for name, value in values.items() if name not in drop}

    def mint(
        self,
        *,
        key: LocalKey | None = None,
        drop: tuple[str, ...] = (),
        header: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> str:
        """An ES256 access token signed by ``key`` (default: the issuer's published key)."""
        key = key or self.key
        return jwt.encode(
            self.claims(drop=drop, **overrides),
            key.private_key,
            algorithm=ACCESS_TOKEN_ALGORITHM,
            headers={"kid": key.kid, "typ": ACCESS_TOKEN_TYPE, **(header or {})},
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests += 1
                body = json.dumps({"keys": issuer.published}).encode()
                self.send_response(issuer.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
