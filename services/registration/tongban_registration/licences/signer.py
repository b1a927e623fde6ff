"""The node's document signature, obtained from identity as registration's service account."""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from tongban_kit.auth import ServiceTokens
from tongban_kit.errors import ServiceUnavailable

SIGN_PATH = "/v1/internal/signatures"


class DocumentSigner(Protocol):
    async def sign(self, *, sha256: str, document_type: str, metadata: dict[str, str]) -> str:
        """A detached JWS (RFC 7797) of ``sha256`` by the node's document key."""
        ...


class IdentitySigner:
    """Asks identity (`POST /v1/internal/signatures`, scope `identity:sign`) to sign."""

    def __init__(self, *, identity_url: str, tokens: ServiceTokens, client: httpx.AsyncClient):
        self.url, self.tokens, self.client = identity_url + SIGN_PATH, tokens, client

    async def sign(self, *, sha256: str, document_type: str, metadata: dict[str, str]) -> str:
        body: dict[str, Any] = {
            "document_sha256": sha256,
            "document_type": document_type,
            "metadata": metadata,
        }
        try:
            response = await self.client.post(
                self.url, json=body, headers=await self.tokens.headers(), timeout=5.0
            )
        except httpx.HTTPError as exc:
            raise ServiceUnavailable("identity could not be reached to sign the licence") from exc
        if response.status_code == 401:
            self.tokens.forget()  # a token identity no longer honours; the next call gets one
        if response.status_code != 201:
            raise ServiceUnavailable(
                f"identity refused to sign the licence ({response.status_code})"
            )
        return str(response.json()["jws"])
