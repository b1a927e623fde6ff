"""The electronic business licence as data, and the QR payload that carries it.

The licence document is canonical JSON (sorted keys, no blanks, UTF-8); the node signs its
SHA-256 (64 lowercase hex digits) as a JWS over an unencoded payload (RFC 7797, via identity).
The QR payload holds both, so a phone verifies it offline with the node's document JWKS::

    BASE64URL(document) "~" BASE64URL(header) "." sha256-hex "." BASE64URL(signature)

The part after ``~`` is an ordinary compact JWS with ``"b64": false`` whose payload is the
digest: any JOSE library that supports RFC 7797 verifies it; the verifier then checks that the
digest is the SHA-256 of the document before it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime
from typing import Any

from tongban_registration.models import Business

DOCUMENT_TYPE = "business-licence"
_SEPARATOR = "~"


class MalformedPayload(ValueError):
    """A QR payload that is not of the licence's shape."""


def licence_document(
    business: Business,
    *,
    licence_id: str,
    node: str,
    issued_at: datetime,
    masked_representative: str,
) -> dict[str, Any]:
    """What a licence states, compact enough for a QR code (the scope is in the register)."""
    return {
        "type": "tongban-business-licence",
        "v": 1,
        "licence_id": licence_id,
        "uscc": business.uscc,
        "name": business.name,
        "entity_type": business.entity_type,
        "legal_representative": masked_representative,
        "registered_capital": f"{business.registered_capital} CNY",
        "registered_on": business.registered_at.date().isoformat(),
        "issuer": f"/nodes/{node}/registration",
        "issued_at": issued_at.isoformat(),
    }


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(document)).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def attached(detached_jws: str, sha256_hex: str) -> str:
    """The compact JWS with the (URL-safe, unencoded) digest put back in as its payload."""
    header, empty, signature = detached_jws.split(".")
    if empty:
        raise ValueError("expected a detached JWS")
    return f"{header}.{sha256_hex}.{signature}"


def qr_payload(document: dict[str, Any], detached_jws: str) -> str:
    return _b64(canonical(document)) + _SEPARATOR + attached(detached_jws, digest(document))


def parse_qr_payload(payload: str) -> tuple[dict[str, Any], bytes, str]:
    """The document, its exact bytes and the compact JWS; ``MalformedPayload`` otherwise."""
    encoded, sep, compact = payload.strip().partition(_SEPARATOR)
    if not sep or compact.count(".") != 2:
        raise MalformedPayload("not a Tongban licence payload")
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        document = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise MalformedPayload("the licence document does not decode") from exc
    if not isinstance(document, dict):
        raise MalformedPayload("the licence document is not an object")
    return document, raw, compact
