"""Registration as a client of identity (service account `svc-registration`): the node's
document signature for licences, and checking an applicant's signature of a submission."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tongban_kit.auth import ServiceTokens
from tongban_kit.errors import ServiceUnavailable

SIGN_PATH = "/v1/internal/signatures"  # scope identity:sign
VERIFY_PERSON_PATH = "/v1/signatures/verify-person"  # scope identity:verify


@dataclass(frozen=True)
class PersonSignature:
    valid: bool
    kid: str | None = None
    reason: str | None = None


class IdentityClient:
    """Calls identity's protected endpoints with the service account's bearer tokens."""

    def __init__(self, *, identity_url: str, tokens: ServiceTokens, client: httpx.AsyncClient):
        self.base, self.tokens, self.client = identity_url, tokens, client

    async def _post(self, path: str, body: dict[str, Any], *, expect: int, what: str) -> Any:
        try:
            response = await self.client.post(
                self.base + path, json=body, headers=await self.tokens.headers(), timeout=5.0
            )
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"identity could not be reached to {what}") from exc
        if response.status_code == 401:
            self.tokens.forget()  # a token identity no longer honours; the next call gets one
        if response.status_code != expect:
            raise ServiceUnavailable(f"identity refused to {what} ({response.status_code})")
        return response.json()

    async def sign(self, *, sha256: str, document_type: str, metadata: dict[str, str]) -> str:
        """A detached JWS (RFC 7797) of ``sha256`` by the node's document key."""
        body = {"document_sha256": sha256, "document_type": document_type, "metadata": metadata}
        signed = await self._post(SIGN_PATH, body, expect=201, what="sign the licence")
        return str(signed["jws"])

    async def verify_person(
        self, *, person_id: uuid.UUID, sha256: str, jws: str
    ) -> PersonSignature:
        """Whether ``jws`` is the person's signature of ``sha256`` with one of their live keys."""
        body = {"person_id": str(person_id), "document_sha256": sha256, "jws": jws}
        result = await self._post(
            VERIFY_PERSON_PATH, body, expect=200, what="check the applicant's signature"
        )
        return PersonSignature(bool(result["valid"]), result.get("kid"), result.get("reason"))
